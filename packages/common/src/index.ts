// Public surface of @tfjs-ddp/common.
export * from './log.js';
export * from './transport/index.js';
export * from './data/index.js';
export * from './text/index.js';
export * from './plan/index.js';
export * from './protocol/index.js';
export * from './collective/index.js';
export * from './collective/hooks/index.js';
export * from './job/index.js';
export * from './backend/index.js';
export * from './models/index.js';
export * from './train/index.js';
export * from './control/index.js';
export * from './metrics/index.js';
export * from './write-file-atomic.js';
