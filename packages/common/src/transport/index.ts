export * from './options.js';
export * from './connect.js';
export * from './server.js';
