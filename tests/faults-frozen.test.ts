// A frozen worker (SIGSTOP keeps its TCP connection open, and freezes its heartbeat thread with the
// rest, so only its silence gives it away) is detected, named and recovered from; thawed (SIGCONT),
// it sees it was dropped (from a generation without it, or, when too few remain to form one, from the
// coordinator's hello naming it), registers again and joins at the next step boundary, every
// replica's hash equal, and the job ends with every sample once per epoch.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { startNats, type NatsFixture } from './support/nats.js';
import { expectHashesAgree, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';
import { captureLog } from './support/log.js';

const TRAIN = 6000;
const BATCH = 50;
// Long enough (about 700 steps) that the thawed worker is back well before the end.
const EPOCHS = 6;

/** Every member took the same state: its parameter hash, reported right after, is the same on all. */
describe('a frozen worker', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('frozen');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  it('SIGSTOP: named as lost and recovered from; after SIGCONT it registers again and rejoins', async () => {
    const file = await writeJob(dir.path, 'frozen', {
      name: 'frozen',
      model: { zoo: 'binary-mlp' },
      data: { train: { type: 'synthetic-binary', n: TRAIN, seed: 4 } },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      batchSize: BATCH,
      epochs: EPOCHS,
      hashCheckEvery: 1,
      workers: { min: 2, max: 3 },
      faults: { heartbeatTimeoutMs: 2000, rejoinTimeoutMs: 20000 },
      output: join(dir.path, 'out'),
    });
    const { log, lines } = captureLog();
    const worker: string[] = [];
    const cluster = await startLocalCluster({
      job: file,
      workers: 3,
      nats: nats.url,
      log,
      onWorkerOutput: (w, line) => worker.push(`[${w}] ${line}`),
    });
    // Stopped also when the test fails or times out (a frozen worker would outlive it).
    onTestFinished(() => cluster.stop());
    let frozen: string | undefined;
    let thawed = false;
    cluster.events.on('progress', (p) => {
      if (p.globalStep === 10 && !frozen) frozen = cluster.killWorker(2, 'SIGSTOP');
      // The survivors train on without it: thaw it.
      if (frozen && !thawed && p.worldSize === 2) {
        thawed = true;
        cluster.signalWorker(frozen, 'SIGCONT');
      }
    });
    const summary = await cluster.result();
    expect(frozen && thawed).toBeTruthy();
    expect(
      lines.some((l) => l.includes('worker lost') && l.includes(frozen!)),
      lines.join('\n'),
    ).toBe(true);
    expect(
      worker.some((l) => l.includes('dropped from the job')),
      [...lines, ...worker.filter((l) => l.includes(frozen!))].join('\n'),
    ).toBe(true);
    // Three members, then the two survivors, then all three again: the thawed worker is back.
    expect(summary.generations.map((g) => g.members.length)).toEqual([3, 2, 3]);
    expect(summary.generations[2].members).toContain(frozen);
    expectHashesAgree(summary.generations[2].hashes);
    expect(summary.worldSize).toBe(3);
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
  }, 120_000);

  it('SIGSTOP with workers.min = world size: the job waits; after SIGCONT it registers again and rejoins', async () => {
    const train = 1200;
    const epochs = 2;
    const file = await writeJob(dir.path, 'frozen-min', {
      name: 'frozen-min',
      model: { zoo: 'binary-mlp' },
      data: { train: { type: 'synthetic-binary', n: train, seed: 4 } },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      batchSize: BATCH,
      epochs,
      hashCheckEvery: 1,
      workers: { min: 2, max: 2 },
      faults: { heartbeatTimeoutMs: 1000, rejoinTimeoutMs: 30000 },
      output: join(dir.path, 'out-min'),
    });
    const { log, lines } = captureLog();
    const worker: string[] = [];
    const cluster = await startLocalCluster({
      job: file,
      workers: 2,
      nats: nats.url,
      log,
      onWorkerOutput: (w, line) => worker.push(`[${w}] ${line}`),
    });
    // Stopped also when the test fails or times out (a frozen worker would outlive it).
    onTestFinished(() => cluster.stop());
    let frozen: string | undefined;
    cluster.events.on('progress', (p) => {
      if (p.globalStep === 10 && !frozen) frozen = cluster.killWorker(1, 'SIGSTOP');
    });
    // Thawed once the coordinator has named it lost (and waits for it: no generation can form without it).
    let thawed = false;
    const thaw = setInterval(() => {
      if (frozen && !thawed && lines.some((l) => l.includes('worker lost') && l.includes(frozen!))) {
        thawed = true;
        cluster.signalWorker(frozen, 'SIGCONT');
      }
    }, 50);
    onTestFinished(() => clearInterval(thaw));
    const summary = await cluster.result();
    const all = [...lines, ...worker].join('\n');
    expect(frozen && thawed, all).toBeTruthy();
    expect(
      worker.some((l) => l.includes('dropped from the job')),
      all,
    ).toBe(true);
    expect(summary.generations.map((g) => g.members.length)).toEqual([2, 2]);
    expect(summary.generations[1].members).toContain(frozen);
    expectHashesAgree(summary.generations[1].hashes);
    expect(summary.abortedSteps).toBeGreaterThan(0);
    expect(uncoveredOrRepeated(summary.committed, epochs, train)).toEqual([]);
  }, 120_000);
});
