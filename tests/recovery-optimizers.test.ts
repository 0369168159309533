// Recovery keeps replicas bit-identical for every optimizer type: a rank that loads state (a survivor
// that was not the root, a joiner, every rank on a resume) must carry on exactly as the rank or
// checkpoint it took it from. hashCheckEvery: 1 makes any drift fail the job at the step it appears.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { connectNats, parseJobSpec, silentLogger, specHash, type JobSpec } from '@tfjs-ddp/common';
import { Coordinator, type JobSummary } from '@tfjs-ddp/coordinator';
import { runWorker } from '@tfjs-ddp/worker';
import { startNats, type NatsFixture } from './support/nats.js';
import { savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';

const OPTIMIZERS = ['sgd', 'momentum', 'adam', 'rmsprop', 'adagrad', 'adadelta'] as const;
const TRAIN = 4000;
const BATCH = 50;
const EPOCHS = 2;

describe.each(OPTIMIZERS)('recovery with %s', (type) => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir(`recovery-${type}`);
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  const job = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    model: { zoo: 'binary-mlp' },
    data: { train: { type: 'synthetic-binary', n: TRAIN, seed: 4 } },
    optimizer: { type, learningRate: 0.01 },
    loss: 'binaryCrossentropy',
    batchSize: BATCH,
    epochs: EPOCHS,
    seed: 5,
    hashCheckEvery: 1,
    faults: { heartbeatTimeoutMs: 2000, rejoinTimeoutMs: 20000 },
    output: join(dir.path, name),
    ...extra,
  });

  it('a worker lost with two survivors, then one joining: the job completes with bit-identical replicas', async () => {
    const file = await writeJob(dir.path, 'lost', job('lost', { workers: { min: 2, max: 3 } }));
    const cluster = await startLocalCluster({ job: file, workers: 3, nats: nats.url, onWorkerOutput: () => {} });
    let killed = false;
    let joiner: Promise<unknown> | undefined;
    cluster.events.on('progress', (p) => {
      if (p.globalStep === 10 && !killed) {
        killed = true;
        // Rank 1: the survivors are ranks 0 and 2, and the new rank 1 takes rank 0's state.
        cluster.killWorker(1);
      }
      // As soon as the survivors train on, a worker in this process (registered within milliseconds:
      // a new worker process could start after the survivors' last step). The coordinator's stop ends it.
      if (p.worldSize === 2 && !joiner) {
        const spec = cluster.spec;
        joiner = runWorker({
          spec,
          specHash: specHash(spec),
          nats: { servers: [nats.url] },
          backend: 'auto',
          workerId: 'joiner',
          log: silentLogger,
        });
      }
    });
    const summary = await cluster.result().finally(() => cluster.stop());
    await joiner;
    expect(killed && joiner).toBeTruthy();
    const sizes = summary.generations.map((g) => g.members.length);
    expect(sizes).toEqual([3, 2, 3]);
    expect(summary.generations.at(-1)?.members).toContain('joiner');
    for (const g of summary.generations) expect(new Set(g.hashes).size, g.reason).toBe(1);
    expect(summary.abortedSteps).toBeGreaterThanOrEqual(1);
    expect(summary.steps).toBe(EPOCHS * (TRAIN / BATCH));
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
  }, 120_000);

  /**
   * Two in-process workers; with `crashAt`, the first coordinator's connection is closed once that
   * step is done (it can tell the workers nothing more), and a second coordinator resumes the job.
   */
  async function run(spec: JobSpec, crashAt?: number): Promise<{ summary: JobSummary; weights: Float32Array }> {
    const hash = specHash(spec);
    const nats$ = { servers: [nats.url] };
    const workers = ['a', 'b'].map((id) =>
      runWorker({ spec, specHash: hash, nats: nats$, backend: 'cpu', workerId: `w-${id}`, log: silentLogger }),
    );
    if (crashAt !== undefined) {
      const nc = await connectNats(nats$);
      const first = new Coordinator({ spec, specHash: hash, nats: nc, log: silentLogger });
      first.on('progress', (p: { globalStep: number }) => {
        if (p.globalStep === crashAt) void nc.close().then(() => first.abort('crashed'));
      });
      await expect(first.run()).rejects.toThrow();
    }
    const summary = await new Coordinator({ spec, specHash: hash, nats: nats$, log: silentLogger }).run();
    await Promise.all(workers);
    return { summary, weights: await savedWeights(join(spec.output, 'model')) };
  }

  it('a coordinator restarted mid-epoch resumes from its checkpoint bit-identical to an undisturbed run', async () => {
    const spec = (name: string) =>
      parseJobSpec(
        JSON.stringify(job(name, { workers: { min: 2, max: 2 }, checkpoint: { everySteps: 10, keep: 2 } })),
        `${name}.json`,
      );
    const undisturbed = await run(spec('resume-ref'));
    // The job's name is its identity on NATS and in the checkpoints; the output differs only.
    const ref = spec('resume-ref');
    // From step 20: Adam's β2^21 computed as a power differs in its last bit from the product.
    const resumed = await run({ ...ref, output: join(dir.path, 'resume-crash') }, 21);
    expect(resumed.summary.resumedAtStep).toBe(20);
    expect(resumed.summary.steps).toBe(undisturbed.summary.steps);
    // checkpoint.keep: 2, and the summary lists only the two still there.
    expect(resumed.summary.checkpoints).toHaveLength(2);
    for (const path of resumed.summary.checkpoints) expect(existsSync(path), path).toBe(true);
    expect(uncoveredOrRepeated(resumed.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    expect(Buffer.from(resumed.weights.buffer).equals(Buffer.from(undisturbed.weights.buffer))).toBe(true);
  }, 120_000);
});
