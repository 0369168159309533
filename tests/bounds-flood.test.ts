// A running job flooded with well-formed commands that would make a worker hold memory without end:
// checkpoint-load chunks of the current generation declaring the largest chunk count and never
// completing, loads declaring more chunks than the largest blob has, and step commands of a
// generation that does not exist, sent while the workers compute. The job completes with the
// parameters of an undisturbed run, and each worker's peak resident memory stays near the
// undisturbed one.
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type JobSummary } from 'tfjs-ddp';
import {
  MAX_CHUNKS,
  PROTOCOL_VERSION,
  commandSchema,
  connectNats,
  encodeMessage,
  jobSubjects,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';

const MiB = 1024 * 1024;

describe('a flood of commands that would hold memory', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let nc: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('bounds-flood');
    nc = await connectNats({ servers: [nats.url] });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it('leaves the job and its workers as without it', async () => {
    const name = 'bounds-flood';
    const job = await writeJob(dir.path, name, {
      name,
      model: { zoo: 'binary-mlp' },
      data: { train: { type: 'synthetic-binary', n: 4000, seed: 3 } },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      // 100 steps an epoch.
      batchSize: 40,
      epochs: 2,
      workers: { min: 2, max: 2 },
      output: join(dir.path, 'out', name),
    });
    const control = jobSubjects(name).control;
    const packr = new Packr({ useRecords: false });
    const run = async (flood: boolean): Promise<{ summary: JobSummary; sent: number }> => {
      const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {} });
      let sent = 0;
      let id = 1_000_000;
      // Paced by the job itself: a burst after every step, while the workers start the next one.
      cluster.events.on('progress', (p: { generation: number }) => {
        if (!flood) return;
        for (let i = 0; i < 4; i++) {
          // Before its bound, each of these made a worker allocate an array of 2^21 slots (16 MB).
          const load = { type: 'load', job: name, gen: p.generation, id: id++, index: 0, total: MAX_CHUNKS };
          nc.publish(control, encodeMessage(commandSchema, { ...load, data: new Uint8Array(1024) } as never));
          nc.publish(
            control,
            packr.pack({ v: PROTOCOL_VERSION, ...load, id: id++, total: 2 ** 31, data: new Uint8Array(8) }),
          );
          sent += 2;
        }
        for (let i = 0; i < 200; i++) {
          const step = {
            type: 'step',
            job: name,
            gen: 999,
            step: i,
            epoch: 0,
            op: i,
            slices: [[0, 1]],
            globalCount: 1,
          };
          nc.publish(control, encodeMessage(commandSchema, { ...step, lr: 0.1, hash: false } as never));
          sent++;
        }
      });
      try {
        return { summary: await cluster.result(), sent };
      } finally {
        await cluster.stop();
      }
    };
    const quiet = await run(false);
    const quietWeights = await savedWeights(join(quiet.summary.output, 'model'));
    const noisy = await run(true);
    expect(noisy.sent).toBe(200 * 208);
    expect(noisy.summary.steps).toBe(200);
    expect(noisy.summary.abortedSteps).toBe(0);
    const noisyWeights = await savedWeights(join(noisy.summary.output, 'model'));
    expect(compareParameters(quietWeights, noisyWeights, 0, 0).allClose).toBe(true);
    // 800 loads declaring 2^21 chunks would be 12 GB of slot arrays; what is held is bounded instead.
    for (const [worker, peak] of Object.entries(noisy.summary.memory)) {
      const undisturbed = quiet.summary.memory[worker]?.rssBytes ?? 0;
      expect(peak.rssBytes - undisturbed, `${worker}: peak RSS ${peak.rssBytes} vs ${undisturbed}`).toBeLessThan(
        128 * MiB,
      );
    }
  }, 240_000);
});
