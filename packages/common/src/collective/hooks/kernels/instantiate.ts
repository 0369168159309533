// Loads the hooks' WebAssembly kernels: each instance gets a memory of its own, sized once (it
// never grows, so Float32Array views of it stay valid), or nothing where the runtime cannot run
// the kernel (no WebAssembly SIMD) or will not give that much memory; the callers then use their
// JavaScript passes.

/** The part of the WebAssembly API used here (the project's type libraries do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (size: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Pages of 64 KiB a 32-bit WebAssembly memory can have. */
const MAX_PAGES = 65536;

const modules = new Map<string, object | null>();

/** The compiled module, or null where this runtime cannot run it. Compiled once per kernel. */
function compiled(base64: string): object | null {
  let module = modules.get(base64);
  if (module === undefined) {
    const bytes = Buffer.from(base64, 'base64');
    module = wasmApi?.validate(bytes) ? new wasmApi.Module(bytes) : null;
    modules.set(base64, module);
  }
  return module;
}

export interface KernelInstance {
  /** The kernel's exported functions, by name. */
  readonly exports: Record<string, (...args: number[]) => number>;
  /** Its memory, `bytes` long at least. */
  readonly buffer: ArrayBuffer;
}

/** An instance of the kernel with `bytes` of memory, or undefined (see the top of this file). */
export function instantiateKernel(base64: string, bytes: number): KernelInstance | undefined {
  const module = compiled(base64);
  if (!module || !wasmApi) return undefined;
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  if (pages > MAX_PAGES) return undefined;
  let memory: { buffer: ArrayBuffer };
  try {
    memory = new wasmApi.Memory({ initial: pages, maximum: pages });
  } catch {
    return undefined; // the runtime would not give that much memory
  }
  const instance = new wasmApi.Instance(module, { env: { memory } });
  return { exports: instance.exports as KernelInstance['exports'], buffer: memory.buffer };
}

/**
 * Where each part (`[elements, bytes per element]`) goes in a kernel's memory: one after another,
 * each on a 16-byte boundary so SIMD loads of any part start on a vector.
 */
export function layout<K extends string>(
  parts: Record<K, readonly [number, number]>,
): {
  bytes: number;
  at: Record<K, number>;
} {
  let bytes = 0;
  const at = {} as Record<K, number>;
  for (const key of Object.keys(parts) as K[]) {
    const [length, unit] = parts[key];
    at[key] = Math.ceil(bytes / 16) * 16;
    bytes = at[key] + length * unit;
  }
  return { bytes, at };
}
