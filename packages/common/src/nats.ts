// `@tfjs-ddp/common/nats`: the NATS connection and the control-message codec and schemas, without
// TensorFlow.js and the rest of the package. A thread that only talks NATS (the worker's heartbeat
// thread) loads this instead of the whole package: milliseconds and a few MB instead of tfjs.
export { connectNats, type NatsConnection } from './transport/connect.js';
export type { NatsOptions } from './transport/options.js';
export { encodeMessage } from './protocol/codec.js';
export { heartbeatSchema } from './control/messages.js';
