// Public surface of the run report: the history recorded while training, the SVG charts and the page.
export * from './history.js';
export * from './svg.js';
export * from './html.js';
export * from './write.js';
export * from './run-recorder.js';
