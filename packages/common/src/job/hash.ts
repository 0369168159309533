// A fingerprint of a job spec: workers and checkpoints compare it to be sure they belong to the
// same job. Keys are sorted so the hash does not depend on how the file was written.
import { createHash } from 'node:crypto';
import type { JobSpec } from './schema.js';

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/**
 * Fields that say where and how the job runs, not what it computes: a coordinator may override
 * them (output directory, worker counts, deadlines, steps sent ahead, straggler thresholds) without
 * its workers counting as another job.
 */
const OPERATIONAL_FIELDS = [
  'output',
  'workers',
  'timeouts',
  'checkpoint',
  'faults',
  'stepsAhead',
  'stragglers',
] as const;

/** sha256 (hex) of the spec's training-relevant fields as canonical JSON: sorted keys, no undefined fields. */
export function specHash(spec: JobSpec): string {
  const relevant: Record<string, unknown> = { ...spec };
  for (const f of OPERATIONAL_FIELDS) delete relevant[f];
  // Whether the optimizer is sharded says how the update is spread over the workers, not what it
  // computes: a checkpoint holds the unsharded form either way and resumes sharded or not.
  relevant.optimizer = { ...spec.optimizer, shard: undefined };
  return createHash('sha256')
    .update(JSON.stringify(canonical(relevant)))
    .digest('hex');
}
