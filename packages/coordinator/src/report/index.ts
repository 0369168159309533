// Public surface of the run report: the SVG charts and the page, drawn from the job summary.
export * from './svg.js';
export * from './html.js';
export * from './write.js';
