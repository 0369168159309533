// Checkpoint storage: written whole, the last K kept, the state's checksum verified on load, and a
// checkpoint of another job spec refused with the fields that differ.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore, DirectoryStorage } from '@tfjs-ddp/coordinator';
import { parseJobSpec, silentLogger, specHash, type JobSpec } from '@tfjs-ddp/common';
import { tempDir, type TempDir } from './support/jobs.js';

const specText = (lr: number) =>
  [
    'name: ckpt',
    'model: { zoo: linear }',
    'data: { train: { type: synthetic-linear, n: 100, w: [1], b: 0, noise: 0, seed: 1 } }',
    `optimizer: { type: sgd, learningRate: ${lr} }`,
    'loss: mse',
    'batchSize: 10',
    'epochs: 1',
  ].join('\n');

describe('checkpoint store', () => {
  let dir: TempDir;
  let spec: JobSpec;
  let store: CheckpointStore;
  const meta = (step: number) => ({
    job: 'ckpt',
    specHash: specHash(spec),
    spec,
    step,
    cursor: { epoch: 0, position: step * 10 },
    generation: 1,
    seed: 42,
    progress: {},
  });

  beforeEach(async () => {
    dir = await tempDir('ckpt');
    spec = parseJobSpec(specText(0.1), 'a.yaml');
    store = new CheckpointStore(new DirectoryStorage(dir.path), 2, silentLogger);
  });
  afterEach(() => dir.remove());

  it('keeps the newest K and loads the newest with its state', async () => {
    for (const step of [3, 6, 9]) await store.save(meta(step), Uint8Array.of(step, 1, 2));
    expect((await readdir(dir.path)).filter((n) => n.startsWith('ckpt-'))).toEqual([
      'ckpt-0000000006',
      'ckpt-0000000009',
    ]);
    const latest = await store.latest(spec, specHash(spec));
    expect(latest?.meta.step).toBe(9);
    expect([...latest!.state]).toEqual([9, 1, 2]);
  });

  it('refuses a corrupt state, saying which file and what checksum', async () => {
    await store.save(meta(4), Uint8Array.of(1, 2, 3));
    await writeFile(join(dir.path, 'ckpt-0000000004', 'state.bin'), Uint8Array.of(1, 2, 4));
    await expect(store.latest(spec, specHash(spec))).rejects.toThrow(
      /ckpt-0000000004 is corrupt: state\.bin has sha256/,
    );
  });

  it('refuses a checkpoint of another job spec, naming the field that differs', async () => {
    await store.save(meta(4), Uint8Array.of(1));
    const other = parseJobSpec(specText(0.5), 'a.yaml');
    await expect(store.latest(other, specHash(other))).rejects.toThrow(
      /another job spec \(optimizer\.learningRate: was 0\.1, now 0\.5\)/,
    );
  });

  it('after a completed run, starts over', async () => {
    await store.save(meta(4), Uint8Array.of(1));
    await store.markCompleted(10);
    expect(await store.clearIfCompleted()).toBe(true);
    expect(await store.latest(spec, specHash(spec))).toBeUndefined();
  });
});
