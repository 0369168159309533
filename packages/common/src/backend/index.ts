// Public surface of the compute-backend selection.
export * from './names.js';
export * from './select.js';
export type { Importer } from './candidates.js';
export { registerWasmGradientKernels } from './wasm-kernels.js';
export type { Tf } from './tf.js';
export { bundleInfo, provideBundleInfo, type BundleInfo } from './bundle.js';
