export * from './messages.js';
export * from './chunks.js';
