// Public surface of @tfjs-ddp/worker.
export { runWorker, type WorkerOptions, type WorkerResult } from './worker.js';
export { RegistrationRefusedError } from './registration.js';
