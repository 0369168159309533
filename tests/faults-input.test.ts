// Bad input and bad numbers: garbage on every subject of a running job is dropped and counted
// while the job trains to the same parameters as without it; a worker of another protocol version
// is refused naming both versions; NaN/Inf in the reduced gradient is skipped alike on every rank,
// and too many in a row stop the job with the last good checkpoint named.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { headers } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type JobSummary } from 'tfjs-ddp';
import {
  PROTOCOL_VERSION,
  commandSchema,
  connectNats,
  createCountingObserver,
  createPrng,
  decodeMessage,
  encodeMessage,
  jobSubjects,
  registerReplySchema,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';

describe('bad input and bad numbers', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('faults-input');
    nc = await connectNats({ servers: [nats.url] });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
    await dir?.remove();
  });

  const linearJob = (name: string, extra: Record<string, unknown> = {}) =>
    writeJob(dir.path, name, {
      name,
      model: { zoo: 'binary-mlp' },
      data: {
        train: { type: 'synthetic-binary', n: 2000, seed: 3 },
        test: { type: 'synthetic-binary', n: 200, seed: 4 },
      },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      batchSize: 50,
      epochs: 2,
      workers: { min: 2, max: 2 },
      output: join(dir.path, 'out', name),
      ...extra,
    });

  it('garbage on every subject of a running job is dropped and counted; the job ends as without it', async () => {
    // 80 steps of 20 messages: 1,600 in all.
    const BURST = 20;
    const job = await linearJob('garbage');
    const run = async (flood: boolean): Promise<{ summary: JobSummary; invalid: number; sent: number }> => {
      const observer = createCountingObserver();
      const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {}, observer });
      let sent = 0;
      const subjects = jobSubjects('garbage');
      const targets = [
        subjects.register,
        subjects.heartbeat,
        subjects.report,
        subjects.control,
        // The data subjects of both members (the worker ids the local cluster gives), whichever holds rank 0.
        subjects.data(1).rs(0, 'local-1'),
        subjects.data(1).rs(1, 'local-0'),
        subjects.data(1).rs(0, 'local-0'),
        subjects.data(1).rs(1, 'local-1'),
        subjects.data(1).ag(0, 'local-0'),
        subjects.data(1).bc(0, 'local-1'),
        subjects.data(0).rs(1, 'local-0'),
      ];
      const rng = createPrng(5);
      const packr = new Packr({ useRecords: false });
      const validStep = encodeMessage(commandSchema, {
        type: 'step',
        job: 'garbage',
        gen: 1,
        step: 3,
        epoch: 0,
        op: 9,
        slices: [
          [0, 25],
          [25, 25],
        ],
        globalCount: 50,
        lr: 0.01,
        hash: false,
      });
      const garbage = (): { data: Uint8Array; hdrs?: ReturnType<typeof headers> } => {
        switch (rng.int(7)) {
          case 0:
            return { data: Uint8Array.from({ length: rng.int(300) }, () => rng.int(256)) };
          case 1:
            return { data: validStep.subarray(0, rng.int(validStep.length)) };
          case 2:
            return { data: new Uint8Array(packr.pack({ v: PROTOCOL_VERSION + 1, type: 'step', job: 'garbage' })) };
          case 3:
            return {
              data: encodeMessage(commandSchema, {
                type: 'step',
                job: 'another-job',
                gen: 1,
                step: 3,
                epoch: 0,
                op: 9,
                slices: [[0, 25]],
                globalCount: 50,
                lr: 0.01,
                hash: false,
              }),
            };
          case 4:
            // A well-formed command of a generation that does not exist: ignored, never executed.
            return {
              data: encodeMessage(commandSchema, {
                type: 'step',
                job: 'garbage',
                gen: 999,
                step: 3,
                epoch: 0,
                op: 9,
                slices: [
                  [0, 25],
                  [25, 25],
                ],
                globalCount: 50,
                lr: 100,
                hash: false,
              }),
            };
          case 5: {
            const h = headers();
            h.set('Ddp-Op', String(rng.int(5)));
            h.set('Ddp-Rank', String(rng.int(9) - 3));
            return { data: Uint8Array.from({ length: rng.int(64) }, () => rng.int(256)), hdrs: h };
          }
          default:
            return { data: new Uint8Array(2 * 1024 * 1024) };
        }
      };
      // A burst after every step, on the wire while the next step runs: the same garbage reaches
      // every step however fast the machine trains.
      if (flood) {
        cluster.events.on('progress', () => {
          for (let i = 0; i < BURST; i++) {
            const g = garbage();
            nc.publish(targets[rng.int(targets.length)], g.data, g.hdrs ? { headers: g.hdrs } : undefined);
            sent++;
          }
        });
      }
      try {
        const summary = await cluster.result();
        await nc.flush();
        return { summary, invalid: observer.invalidTotal(), sent };
      } finally {
        await cluster.stop();
      }
    };
    const quiet = await run(false);
    const quietWeights = await savedWeights(join(quiet.summary.output, 'model'));
    const noisy = await run(true);
    expect(noisy.sent).toBe(BURST * noisy.summary.steps);
    expect(noisy.summary.steps).toBe(80);
    // Dropped, not acted on: no step was lost to the garbage and redone.
    expect(noisy.summary.abortedSteps).toBe(0);
    expect(noisy.invalid).toBeGreaterThan(0);
    const noisyWeights = await savedWeights(join(noisy.summary.output, 'model'));
    expect(compareParameters(quietWeights, noisyWeights, 0, 0).allClose).toBe(true);
  }, 180_000);

  it('a worker of another protocol version is refused at registration, naming both versions', async () => {
    const job = await linearJob('version');
    const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {} });
    try {
      const packr = new Packr({ useRecords: false });
      const request = new Uint8Array(
        packr.pack({
          v: PROTOCOL_VERSION + 1,
          type: 'register',
          job: 'version',
          workerId: 'old-worker',
          specHash: 'x',
          backend: 'cpu',
          host: 'h',
          pid: 1,
          sizes: { train: 2000, validation: 0, test: 200 },
        }),
      );
      // The coordinator subscribes while the cluster starts; ask until it answers.
      let reply;
      for (let attempt = 0; !reply; attempt++) {
        try {
          reply = await nc.request(jobSubjects('version').register, request, { timeout: 5_000 });
        } catch (err) {
          if (attempt > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const decoded = decodeMessage(registerReplySchema, reply.data, { maxBytes: 65536 });
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) return;
      expect(decoded.value.accepted).toBe(false);
      expect(decoded.value.reason).toMatch(
        new RegExp(`protocol version.*${PROTOCOL_VERSION}.*${PROTOCOL_VERSION + 1}`),
      );
      await cluster.result();
    } finally {
      await cluster.stop();
    }
  }, 120_000);

  /** A linear regression on a CSV of x,y rows, 2 workers, batch 20, 3 epochs (10 steps each). */
  async function csvRegression(name: string, rows: string[], extra: Record<string, unknown> = {}): Promise<string> {
    const csv = join(dir.path, `${name}.csv`);
    await writeFile(csv, ['x,y', ...rows].join('\n'));
    return writeJob(dir.path, name, {
      name,
      model: { zoo: 'linear' },
      data: { train: { type: 'csv', url: csv, features: ['x'], label: 'y' } },
      optimizer: { type: 'sgd', learningRate: 0.1 },
      loss: 'mse',
      batchSize: 20,
      epochs: 3,
      workers: { min: 2, max: 2 },
      output: join(dir.path, 'out', name),
      ...extra,
    });
  }

  it('a step with Inf in the reduced gradient is skipped on every rank alike, counted, and training goes on', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => {
      const x = (i % 13) / 13;
      return `${i === 17 ? '1e30' : x.toFixed(3)},${(x * 2 + 1).toFixed(3)}`;
    });
    const job = await csvRegression('nonfinite', rows, { hashCheckEvery: 1 });
    const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {} });
    const summary = await cluster.result().finally(() => cluster.stop());
    // The sample with x = 1e30 is in one step per epoch; that step's update is skipped, the rest train.
    expect(summary.nonFiniteSteps).toBe(3);
    expect(summary.steps).toBe(30);
    expect(summary.epochs[2].trainLoss).toBeGreaterThan(0);
  }, 120_000);

  it('too many NaN/Inf steps in a row stop the job with a clear error naming the last good checkpoint', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => `${i % 2 === 0 ? '1e30' : '0.5'},1`);
    const job = await csvRegression('diverging', rows, {
      checkpoint: { everySteps: 1 },
      faults: { maxNonFiniteSteps: 2 },
    });
    const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {} });
    await expect(cluster.result().finally(() => cluster.stop())).rejects.toThrow(
      /3 steps in a row had NaN or Inf in the reduced gradient.*last good checkpoint is .*ckpt-/,
    );
  }, 120_000);
});
