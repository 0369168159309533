// One loader per compute backend, in the order `auto` tries them. A loader either activates its
// backend and says what it runs on, or throws BackendUnavailable saying why not and what would fix it.
import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { bundleInfo } from './bundle.js';
import type { BackendName } from './names.js';
import { registerWasmGradientKernels } from './wasm-kernels.js';

/** Imports a module by name; replaceable so tests can stand in for packages this machine lacks. */
export type Importer = (specifier: string) => Promise<unknown>;

/** Imports from the bundle when running as one (scripts/bundle.mjs), from node_modules otherwise. */
export const defaultImporter: Importer = (specifier) => bundleInfo().modules?.[specifier]?.() ?? import(specifier);

export class BackendUnavailable extends Error {
  constructor(
    readonly why: string,
    readonly fix: string,
  ) {
    super(why);
    this.name = 'BackendUnavailable';
  }
}

export interface BackendCandidate {
  /** The package or engine, as logs and errors name it. */
  id: string;
  backend: BackendName;
  /** Activates the backend and returns what it runs on. */
  load(importer: Importer): Promise<string>;
}

/** Every @tensorflow package is pinned to one version (DESIGN §6): the one of the tfjs-core installed. */
const TF_VERSION = tf.version_core;

function isMissing(err: unknown, specifier: string): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    (e.message ?? '').includes(`'${specifier}'`)
  );
}

async function importOptional(importer: Importer, specifier: string, fix: string): Promise<unknown> {
  try {
    return await importer(specifier);
  } catch (err) {
    if (isMissing(err, specifier))
      throw new BackendUnavailable(`${specifier} is not installed (optional dependency)`, fix);
    throw new BackendUnavailable(`${specifier} failed to load: ${(err as Error)?.message ?? String(err)}`, fix);
  }
}

async function activate(name: string, fix: string): Promise<void> {
  // setBackend resolves false (and warns on the console) when the backend's initialisation throws.
  if (!(await tf.setBackend(name))) throw new BackendUnavailable(`the '${name}' backend failed to initialise`, fix);
  await tf.ready();
}

const tfjsNodeGpu: BackendCandidate = {
  id: 'tfjs-node-gpu',
  backend: 'tensorflow',
  async load(importer) {
    const fix =
      `npm install @tensorflow/tfjs-node-gpu@${TF_VERSION} on a Linux machine with an NVIDIA driver and ` +
      `the CUDA and cuDNN libraries that package's README lists`;
    await importOptional(importer, '@tensorflow/tfjs-node-gpu', fix);
    await activate('tensorflow', fix);
    const backend = tf.backend() as { isUsingGpuDevice?: boolean };
    if (!backend.isUsingGpuDevice) {
      throw new BackendUnavailable(
        '@tensorflow/tfjs-node-gpu loaded but TensorFlow found no CUDA device',
        'check that nvidia-smi lists the GPU and that the CUDA and cuDNN libraries are on LD_LIBRARY_PATH',
      );
    }
    return 'TensorFlow C library on a CUDA GPU';
  },
};

interface Dawn {
  create(flags: string[]): { requestAdapter(options?: object): Promise<DawnAdapter | null> };
  globals: Record<string, unknown>;
}
interface DawnAdapter {
  info?: { vendor?: string; architecture?: string; description?: string };
}

/** Installs `navigator.gpu` and the WebGPU enums as a browser has them; returns how to undo it. */
function installWebGpuGlobals(gpu: unknown, globals: Record<string, unknown>): () => void {
  const g = globalThis as Record<string, unknown>;
  const added = Object.keys(globals).filter((k) => !(k in g));
  Object.assign(g, Object.fromEntries(added.map((k) => [k, globals[k]])));
  const nav = g.navigator as Record<string, unknown> | undefined;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  else Object.defineProperty(g, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return () => {
    for (const k of added) delete g[k];
    if (nav) delete nav.gpu;
    else delete g.navigator;
  };
}

const webgpu: BackendCandidate = {
  id: 'webgpu',
  backend: 'webgpu',
  async load(importer) {
    const fix = 'install the GPU vendor Vulkan driver (libvulkan1 and its ICD) so Dawn can open the GPU';
    const dawn = (await importOptional(importer, 'webgpu', `npm install webgpu, then: ${fix}`)) as Dawn;
    const gpu = dawn.create([]);
    // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is imported.
    const uninstall = installWebGpuGlobals(gpu, dawn.globals);
    try {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) throw new BackendUnavailable('Dawn found no WebGPU adapter (no Vulkan-capable GPU)', fix);
      await importOptional(
        importer,
        '@tensorflow/tfjs-backend-webgpu',
        `npm install @tensorflow/tfjs-backend-webgpu@${TF_VERSION}`,
      );
      await activate('webgpu', fix);
      const info = adapter.info;
      return `WebGPU through Dawn on ${[info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'a GPU adapter'}`;
    } catch (err) {
      uninstall();
      throw err;
    }
  },
};

const tfjsNode: BackendCandidate = {
  id: 'tfjs-node',
  backend: 'tensorflow',
  async load(importer) {
    const fix = `npm install @tensorflow/tfjs-node@${TF_VERSION}`;
    // tfjs-node-gpu without a CUDA device already registered 'tensorflow'; it runs on the CPU just the same.
    const viaGpuPackage = tf.findBackendFactory('tensorflow') != null;
    if (!viaGpuPackage) await importOptional(importer, '@tensorflow/tfjs-node', fix);
    await activate('tensorflow', fix);
    return `TensorFlow C library on the CPU${viaGpuPackage ? ' (through @tensorflow/tfjs-node-gpu)' : ''}`;
  },
};

let wasmPathsSet = false;

const wasm: BackendCandidate = {
  id: 'wasm',
  backend: 'wasm',
  async load(importer) {
    const fix = `reinstall @tensorflow/tfjs-backend-wasm@${TF_VERSION} (a dependency of @tfjs-ddp/common)`;
    const pkg = (await importOptional(importer, '@tensorflow/tfjs-backend-wasm', fix)) as {
      setWasmPaths(prefix: string): void;
    };
    if (!wasmPathsSet) {
      // In Node the binaries are read from disk, so the prefix is the installed dist folder (or the
      // bundle's copy of it), not a URL.
      const dir =
        bundleInfo().wasmDir ?? dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
      pkg.setWasmPaths(dir.endsWith(sep) ? dir : dir + sep);
      wasmPathsSet = true;
    }
    // tfjs runs wasm threads only through browser workers (its own flag says false in Node); pinning it
    // keeps one thread, with which wasm, like cpu, gives bit-identical results for identical inputs.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    registerWasmGradientKernels();
    await activate('wasm', fix);
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return `WebAssembly${simd ? ' with SIMD' : ''}, one thread`;
  },
};

const cpu: BackendCandidate = {
  id: 'cpu',
  backend: 'cpu',
  async load() {
    await activate('cpu', 'none: the plain JavaScript backend is built into @tensorflow/tfjs');
    return 'plain JavaScript';
  },
};

/** What each request tries, in order. */
export const CANDIDATES: Record<'auto' | BackendName, BackendCandidate[]> = {
  auto: [tfjsNodeGpu, webgpu, tfjsNode, wasm, cpu],
  tensorflow: [tfjsNodeGpu, tfjsNode],
  webgpu: [webgpu],
  wasm: [wasm],
  cpu: [cpu],
};
