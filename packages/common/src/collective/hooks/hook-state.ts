// The byte form of a hook's state: which hook and gradient length it belongs to, the per-rank
// residual and whatever the hook shares across ranks. Loading checks both, so the state of another
// hook or another model is refused with a message instead of silently mixed in.
import { byteView, floatsOf, packPlain, unpackPlain } from '../../protocol/index.js';
import type { CommHookType } from './spec.js';

export interface HookState {
  type: CommHookType;
  length: number;
  /** This rank's error-feedback residual (length floats). */
  residual: Float32Array;
  /** State every rank holds alike (PowerSGD: the warm-start Q of every matrix). */
  shared: Float32Array;
  /** Steps whose state was committed. */
  steps: number;
}

export function encodeHookState(s: HookState): Uint8Array {
  return packPlain({
    type: s.type,
    length: s.length,
    steps: s.steps,
    residual: byteView(s.residual),
    shared: byteView(s.shared),
  });
}

/**
 * Decodes `bytes`, checking they belong to a `type` hook over `length` floats with `shared` shared
 * floats (any number when omitted).
 */
export function decodeHookState(bytes: Uint8Array, type: CommHookType, length: number, shared?: number): HookState {
  let raw: Partial<Record<keyof HookState, unknown>>;
  try {
    raw = unpackPlain(bytes) as typeof raw;
  } catch (err) {
    throw new Error(`cannot read the ${type} hook state (${bytes.length} bytes): ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (raw?.type !== type || raw.length !== length) {
    throw new Error(
      `expected the state of a ${type} hook over ${length} floats, got one of a ${String(raw?.type)} hook over ` +
        `${String(raw?.length)} floats; it belongs to another job (compression or model)`,
    );
  }
  if (!(raw.residual instanceof Uint8Array) || !(raw.shared instanceof Uint8Array) || typeof raw.steps !== 'number') {
    throw new Error(`the ${type} hook state lacks its residual, shared part or step count; it is damaged`);
  }
  const residual = floatsOf(raw.residual);
  const sharedPart = floatsOf(raw.shared);
  if (residual.length !== length || (shared !== undefined && sharedPart.length !== shared)) {
    throw new Error(
      `the ${type} hook state holds ${residual.length} residual and ${sharedPart.length} shared floats, ` +
        `expected ${length} and ${shared ?? 'any number'}; it is damaged`,
    );
  }
  return { type, length, residual, shared: sharedPart, steps: raw.steps };
}
