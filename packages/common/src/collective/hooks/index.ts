// Public surface of the gradient communication hooks: the interface, the factory a worker builds
// its hook with from the job spec, and the spec schema the job file validates against.
export * from './comm-hook.js';
export * from './create.js';
export * from './spec.js';
export { powerSgdLayout, type PowerSgdLayout } from './power-sgd.js';
export { decodeHookState, type HookState } from './hook-state.js';
