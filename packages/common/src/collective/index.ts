// Public surface of the collective: the interface the worker trains through, the NATS
// implementation, its errors, the shard/chunk layout and the half-precision conversions.
export * from './collective.js';
export * from './errors.js';
export * from './layout.js';
export * from './half-float.js';
export * from './options.js';
export * from './rank-order-sum.js';
export { createNatsCollective } from './nats-collective.js';
