// Public surface of @tfjs-ddp/common.
export * from './log.js';
export * from './transport/index.js';
