// A failure during recovery is recovered from like any other: a second worker lost while the
// coordinator forms the generation after a first loss makes it recover again (one retry policy for
// steps, evaluations and recoveries alike) instead of failing the job.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { commandSchema, connectNats, decodeMessage, jobSubjects, type NatsConnection } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';

const TRAIN = 4000;
const BATCH = 50;
const EPOCHS = 2;

describe('a failure during recovery', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let watcher: NatsConnection;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('recovery-failure');
    watcher = await connectNats({ servers: [nats.url] });
  });
  afterAll(async () => {
    await watcher?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it('a second worker lost while the generation after a first loss forms: the job completes, every sample once per epoch', async () => {
    const name = 'lost-in-recovery';
    const file = await writeJob(dir.path, name, {
      name,
      model: { zoo: 'binary-mlp' },
      data: { train: { type: 'synthetic-binary', n: TRAIN, seed: 4 } },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      batchSize: BATCH,
      epochs: EPOCHS,
      hashCheckEvery: 1,
      workers: { min: 2, max: 4 },
      // Three heartbeat periods: a worker slowed by a loaded machine is not taken for lost.
      faults: { heartbeatTimeoutMs: 3000, rejoinTimeoutMs: 20000 },
      output: join(dir.path, 'out'),
    });
    const cluster = await startLocalCluster({ job: file, workers: 4, nats: nats.url, onWorkerOutput: () => {} });
    let first: string | undefined;
    let second: string | undefined;
    let forming: number | undefined;
    // The coordinator's commands, as the workers see them: the generation command of the recovery
    // from the first loss is the moment the coordinator starts forming that generation.
    const sub = watcher.subscribe(jobSubjects(name).control, {
      callback: (_err, m) => {
        const r = decodeMessage(commandSchema, m.data, { maxBytes: 1 << 24, job: name });
        if (!r.ok || r.value.type !== 'generation' || !first || second) return;
        if (r.value.members.includes(first)) return;
        forming = r.value.gen;
        second = cluster.killWorker(1);
      },
    });
    await watcher.flush();
    cluster.events.on('progress', (p) => {
      if (p.globalStep === 10 && !first) first = cluster.killWorker(1);
    });
    const summary = await cluster.result().finally(async () => {
      sub.unsubscribe();
      await cluster.stop();
    });
    expect(first && second).toBeTruthy();
    // The generation that lost a member while forming never formed; the next one did, without both.
    const formed = summary.generations.map((g) => g.generation);
    expect(formed).not.toContain(forming);
    const last = summary.generations[summary.generations.length - 1];
    expect(last.generation).toBeGreaterThan(forming!);
    expect(last.members).not.toContain(first);
    expect(last.members).not.toContain(second);
    expect(new Set(last.hashes).size).toBe(1);
    expect(summary.abortedSteps).toBeGreaterThanOrEqual(2);
    expect(summary.worldSize).toBe(2);
    expect(summary.steps).toBe(EPOCHS * (TRAIN / BATCH));
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
  }, 120_000);
});
