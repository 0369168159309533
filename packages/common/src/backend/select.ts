// Picks the compute backend for this process: the requested one, or for `auto` the first that loads
// of CUDA TensorFlow, WebGPU, CPU TensorFlow, wasm and plain JavaScript. Logs the choice and why each
// earlier candidate was passed over, so a slow run on a GPU node explains itself.
import * as tf from '@tensorflow/tfjs';
import type { Logger } from '../log.js';
import { BackendUnavailable, CANDIDATES, defaultImporter, type Importer } from './candidates.js';
import { BACKEND_REQUESTS, backendRequestSchema, type BackendName } from './names.js';
import type { Tf } from './tf.js';

export interface BackendSelection {
  name: BackendName;
  /** The package or engine that loaded, e.g. 'tfjs-node-gpu' or 'wasm'. */
  via: string;
  tf: Tf;
  /** What it runs on, e.g. 'WebAssembly with SIMD, one thread'. */
  reason: string;
  /** Candidates tried before it, in order, and why each did not load. */
  skipped: { name: string; why: string }[];
}

export interface SelectBackendOptions {
  importer?: Importer;
}

/**
 * Call before creating tensors: tfjs moves tensors made on another backend lazily, and a cpu tensor
 * cast from int32 keeps Int32Array storage that the wasm backend would then read as float bits.
 */
export async function selectBackend(
  requested: string,
  log: Logger,
  options: SelectBackendOptions = {},
): Promise<BackendSelection> {
  const parsed = backendRequestSchema.safeParse(requested);
  if (!parsed.success) {
    throw new Error(`unknown backend '${requested}': expected one of ${BACKEND_REQUESTS.join(', ')}`);
  }
  const importer = options.importer ?? defaultImporter;
  const skipped: BackendSelection['skipped'] = [];
  const fixes: string[] = [];
  for (const candidate of CANDIDATES[parsed.data]) {
    try {
      const reason = await candidate.load(importer);
      log.info(`compute backend: ${candidate.backend} via ${candidate.id} (${reason})`, {
        requested,
        skipped: skipped.length ? skipped.map((s) => s.name).join(',') : undefined,
      });
      return { name: candidate.backend, via: candidate.id, tf, reason, skipped };
    } catch (err) {
      // A native library can fail in ways no loader anticipates; `auto` still moves on to the next one.
      const unavailable =
        err instanceof BackendUnavailable
          ? err
          : new BackendUnavailable(
              `${candidate.id} failed while starting: ${(err as Error)?.message ?? String(err)}`,
              `check that ${candidate.id} and its native libraries are installed for this platform`,
            );
      skipped.push({ name: candidate.id, why: unavailable.why });
      fixes.push(unavailable.fix);
      log.info(`skipped backend ${candidate.id}: ${unavailable.why}`);
    }
  }
  const others = BACKEND_REQUESTS.filter((b) => b !== requested).join(', ');
  throw new Error(
    `backend '${requested}' could not be loaded: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}. ` +
      `To fix: ${fixes.join('; or ')}; or choose another backend (${others})`,
  );
}
