// Public surface of the wire protocol: version, subjects, control-message codec and its binary
// building blocks, chunk headers and the observer every receiver reports dropped messages to.
export * from './version.js';
export * from './subjects.js';
export * from './binary.js';
export * from './format-issues.js';
export * from './codec.js';
export * from './invalid.js';
export * from './wire-dtype.js';
export * from './chunk-header.js';
