export * from './options.js';
export * from './connect.js';
export * from './server.js';
export * from './cluster.js';
export * from './server-pool.js';
export * from './nats-roles.js';
export * from './permissions.js';
