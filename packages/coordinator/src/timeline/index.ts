// Public surface of the run's timeline, recorded while the job trains: metrics, the Chrome trace, the stragglers and
// the history the report draws. report/ only renders what it recorded.
export * from './history.js';
export * from './trace.js';
export * from './run-recorder.js';
export * from './stragglers.js';
