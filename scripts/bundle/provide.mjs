// First module of every entry of the bundle: tells the bundled code where things are (see
// packages/common/src/backend/bundle.ts). All of a bundle's modules share its file's
// import.meta.url, so `here` is the bundle's folder.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provideBundleInfo } from '@tfjs-ddp/common';

const here = dirname(fileURLToPath(import.meta.url));
const exportsOf = (m) => m.default ?? m;

provideBundleInfo({
  // Both are CommonJS inside the bundle, where import() yields module.exports as the default.
  modules: {
    '@tensorflow/tfjs-backend-wasm': () => import('@tensorflow/tfjs-backend-wasm').then(exportsOf),
    '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu').then(exportsOf),
  },
  wasmDir: here,
  workerBin: join(here, 'tfjs-ddp-worker.mjs'),
  heartbeatThread: join(here, 'heartbeat-thread.mjs'),
  // Replaced by the bundler with the CLI package's version.
  version: process.env.TFJS_DDP_BUNDLE_VERSION,
});
