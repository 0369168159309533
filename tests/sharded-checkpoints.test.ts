// A sharded optimizer's state follows the shards: a checkpoint written by 3 sharded workers holds
// every shard's slots (gathered at checkpoint time, in the unsharded form), so 2 sharded workers
// resuming from it re-shard the slots exactly and end where 2 unsharded workers resuming from the
// same checkpoint end; and a worker that joins a sharded job mid-run takes its shard's slots from
// the generation's sync, the replicas staying bit-identical at every step. A worker killed mid-run
// takes its shard's slots with it: training goes back to the last checkpoint with the survivors and
// completes, every sample trained once per epoch.
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { floatsOf, parseJobSpec, unpackPlain, type JobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '@tfjs-ddp/coordinator';
import { uncoveredOrRepeated } from './support/coverage.js';
import { startInProcessJob } from './support/in-process.js';
import { compareParameters, expectHashesAgree, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { startNats, type NatsFixture } from './support/nats.js';

const TRAIN = 400;
const BATCH = 25;
const EPOCHS = 2;

describe('sharded optimizer state in checkpoints and generations', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('sharded-ckpt');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  function spec(name: string, shard: boolean, workers: { min: number; max: number }, checkpointDir: string): JobSpec {
    return parseJobSpec(
      JSON.stringify({
        name,
        model: { zoo: 'binary-mlp', params: { hidden: 16 } },
        data: { train: { type: 'synthetic-binary', n: TRAIN, seed: 4, noise: 0.5 } },
        loss: 'binaryCrossentropy',
        optimizer: { type: 'adam', learningRate: 0.01, clipNorm: 0.5, weightDecay: 0.1, shard },
        batchSize: BATCH,
        epochs: EPOCHS,
        seed: 7,
        hashCheckEvery: 1,
        checkpoint: { everySteps: 10, keep: 10, dir: checkpointDir },
        workers,
        output: join(dir.path, `out-${name}-${shard}-${workers.max}`),
      }),
      `${name}.json`,
    );
  }

  async function run(s: JobSpec, ids: string[]): Promise<{ summary: JobSummary; params: Float32Array }> {
    const summary = await startInProcessJob(s, nats.url, ids).result();
    return { summary, params: await savedWeights(join(s.output, 'model')) };
  }

  /** The optimizer slots (and counters) of a checkpoint's state, in order, as one array. */
  async function optimizerValues(checkpoint: string): Promise<{ entries: number; values: Float32Array }> {
    const state = unpackPlain(await readFile(join(checkpoint, 'state.bin'))) as {
      optimizer: { dtype: string; values: Uint8Array }[];
    };
    const floats = state.optimizer.filter((e) => e.dtype === 'float32').map((e) => floatsOf(e.values));
    const values = new Float32Array(floats.reduce((n, f) => n + f.length, 0));
    floats.reduce((at, f) => (values.set(f, at), at + f.length), 0);
    return { entries: state.optimizer.length, values };
  }

  it('resumes at 2 workers from a checkpoint written at 3 as 2 unsharded workers resume from it', async () => {
    const written = join(dir.path, 'written');
    await run(spec('resize', true, { min: 3, max: 3 }, written), ['a', 'b', 'c']);
    // The sharded checkpoint holds what an unsharded job's holds: every slot of every variable.
    const unshardedWritten = join(dir.path, 'written-unsharded');
    await run(spec('resize', false, { min: 3, max: 3 }, unshardedWritten), ['a', 'b', 'c']);
    const [mine, theirs] = await Promise.all(
      [written, unshardedWritten].map((d) => optimizerValues(join(d, 'ckpt-0000000010'))),
    );
    // Adam: the iteration count, m and v of each of the 6 variables, accBeta1 and accBeta2.
    expect(mine.entries).toBe(1 + 2 * 6 + 2);
    expect(mine.entries).toBe(theirs.entries);
    expect(compareParameters(theirs.values, mine.values, 0, 0).normRelative).toBeLessThan(1e-6);
    // The checkpoint of step 10, mid-epoch, without the mark of the completed run.
    const copies = await Promise.all(
      ['sharded', 'plain'].map(async (name) => {
        const to = join(dir.path, `from-10-${name}`);
        await cp(join(written, 'ckpt-0000000010'), join(to, 'ckpt-0000000010'), { recursive: true });
        return to;
      }),
    );
    const sharded = await run(spec('resize', true, { min: 2, max: 2 }, copies[0]), ['a', 'b']);
    const plain = await run(spec('resize', false, { min: 2, max: 2 }, copies[1]), ['a', 'b']);
    for (const r of [sharded, plain]) {
      expect(r.summary.resumedAtStep).toBe(10);
      expect(r.summary.worldSize).toBe(2);
      expect(uncoveredOrRepeated(r.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    }
    expect(compareParameters(plain.params, sharded.params, 0, 0).normRelative).toBeLessThan(1e-6);
  }, 120_000);

  it('gives a worker that joins mid-run its shard of the slots, every replica alike after every step', async () => {
    const s = spec('join', true, { min: 2, max: 3 }, join(dir.path, 'join-ckpt'));
    const job = startInProcessJob(s, nats.url, ['a', 'b']);
    let added = false;
    job.coordinator.on('step', (e: { step: number }) => {
      if (e.step < 5 || added) return;
      added = true;
      job.addWorker('c');
    });
    const summary = await job.result();
    expect(summary.generations.map((g) => g.members.length)).toEqual([2, 3]);
    for (const g of summary.generations) expectHashesAgree(g.hashes, g.reason);
    expect(summary.abortedSteps).toBe(0);
    expect(summary.steps).toBe(EPOCHS * (TRAIN / BATCH));
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
    expect(summary.epochs[1].trainLoss).toBeLessThan(summary.epochs[0].trainLoss);
  }, 120_000);

  it('goes back to the last checkpoint when a worker is killed, and completes with every sample once', async () => {
    const s = spec('killed', true, { min: 2, max: 3 }, join(dir.path, 'killed-ckpt'));
    const file = await writeJob(dir.path, 'killed', {
      ...s,
      faults: { heartbeatTimeoutMs: 2000, rejoinTimeoutMs: 20000 },
    });
    const cluster = await startLocalCluster({ job: file, workers: 3, nats: nats.url, onWorkerOutput: () => {} });
    // Stopped also when the test fails or times out (a frozen worker would outlive it).
    onTestFinished(() => cluster.stop());
    let killed = false;
    cluster.events.on('progress', (p) => {
      if (p.globalStep >= 13 && !killed) {
        killed = true;
        cluster.killWorker(1);
      }
    });
    const summary = await cluster.result();
    expect(killed).toBe(true);
    expect(summary.steps).toBe(EPOCHS * (TRAIN / BATCH));
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
    const last = summary.generations.at(-1)!;
    expect(last.members).toHaveLength(2);
    expect(last.reason).toMatch(/^resumed from .*ckpt-\d{10}$/);
    expect(summary.abortedSteps).toBeGreaterThanOrEqual(1);
    for (const g of summary.generations) expectHashesAgree(g.hashes, g.reason);
  }, 120_000);
});
