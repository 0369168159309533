// Failures and recovery with real processes and a real nats-server: a worker SIGKILLed mid-run, a
// worker joining mid-run, the coordinator killed and restarted, nats-server restarted, two jobs on
// one server. Every test checks what a user cares about: the job finishes, each sample is trained
// once per epoch, and the parameters are those of an undisturbed run.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, workerBinPath, type JobSummary } from 'tfjs-ddp';
import { createPrng } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, fashionSubset, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';
import { captureLog } from './support/log.js';

const CLI = 'packages/cli/dist/bin.js';
const TRAIN = 2000;

describe('failures and recovery', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let data: { train: { images: string; labels: string }; test: { images: string; labels: string } };

  beforeAll(async () => {
    nats = await startNats({ binaryOnly: true });
    dir = await tempDir('faults');
    data = { train: await fashionSubset(dir.path, 'train', TRAIN), test: await fashionSubset(dir.path, 't10k', 1000) };
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  function mlpJob(name: string, extra: Record<string, unknown> = {}): Promise<string> {
    return writeJob(dir.path, name, {
      name,
      model: { zoo: 'mlp' },
      data: {
        train: { type: 'idx', ...data.train },
        test: { type: 'idx', ...data.test },
      },
      optimizer: { type: 'adam', learningRate: 0.002 },
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
      batchSize: 100,
      epochs: 3,
      seed: 11,
      workers: { min: 2, max: 3 },
      faults: { heartbeatTimeoutMs: 1500, rejoinTimeoutMs: 20000 },
      output: join(dir.path, 'out', name),
      ...extra,
    });
  }

  async function runLocal(
    job: string,
    workers: number,
    during?: (c: Awaited<ReturnType<typeof startLocalCluster>>, step: number) => void,
  ): Promise<JobSummary> {
    const cluster = await startLocalCluster({ job, workers, nats: nats.url, onWorkerOutput: () => {} });
    cluster.events.on('progress', (p) => during?.(cluster, p.globalStep));
    return cluster.result().finally(() => cluster.stop());
  }

  it('SIGKILL of a worker at a random step: the job finishes, every sample once per epoch, same accuracy', async () => {
    const job = await mlpJob('kill');
    const undisturbed = await runLocal(job, 3);
    const accuracy = undisturbed.test!.accuracy;
    for (const seed of [1, 2, 3]) {
      const rng = createPrng(seed);
      const killAt = 3 + rng.int(50);
      const victim = rng.int(3);
      let killed = false;
      const summary = await runLocal(job, 3, (cluster, step) => {
        if (step === killAt && !killed) {
          killed = true;
          cluster.killWorker(victim);
        }
      });
      expect(killed).toBe(true);
      expect(summary.worldSize).toBe(2);
      expect(summary.abortedSteps).toBeGreaterThanOrEqual(1);
      expect(uncoveredOrRepeated(summary.committed, 3, TRAIN)).toEqual([]);
      expect(summary.steps).toBe(3 * (TRAIN / 100));
      expect(Math.abs(summary.test!.accuracy - accuracy)).toBeLessThanOrEqual(0.01);
    }
  }, 300_000);

  it('a worker started mid-run joins, and right after joining holds exactly rank 0 parameters', async () => {
    const job = await mlpJob('join');
    let added: string | undefined;
    const summary = await runLocal(job, 2, (cluster, step) => {
      if (step === 8 && !added) added = cluster.addWorker();
    });
    expect(added).toBeDefined();
    expect(summary.worldSize).toBe(3);
    const joined = summary.generations.find((g) => g.members.includes(added!));
    expect(joined).toBeDefined();
    expect(joined!.members).toHaveLength(3);
    expect(new Set(joined!.hashes).size).toBe(1);
    expect(joined!.hashes[joined!.members.indexOf(added!)]).toBe(joined!.hashes[0]);
    expect(uncoveredOrRepeated(summary.committed, 3, TRAIN)).toEqual([]);
  }, 180_000);

  it('nats-server killed and restarted mid-run: the step in flight is aborted and redone, nothing lost', async () => {
    const job = await mlpJob('outage');
    const { log, lines } = captureLog();
    const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, onWorkerOutput: () => {}, log });
    let restarted = false;
    // Killed as step 10 is reported, so step 11 cannot finish before the server is gone; once the
    // process has exited every connection is dead, and it starts again on the same address.
    cluster.events.on('progress', (p) => {
      if (p.globalStep === 10 && !restarted) {
        restarted = true;
        void nats.kill(true).then(() => nats.start());
      }
    });
    const summary = await cluster.result().finally(() => cluster.stop());
    expect(restarted).toBe(true);
    expect(
      lines.some((l) => l.includes('NATS connection re-established; the step in flight is redone')),
      lines.join('\n'),
    ).toBe(true);
    expect(summary.abortedSteps).toBeGreaterThanOrEqual(1);
    expect(summary.steps).toBe(3 * (TRAIN / 100));
    expect(uncoveredOrRepeated(summary.committed, 3, TRAIN)).toEqual([]);
  }, 180_000);

  it('two jobs on one nats-server stay independent: each ends as it does alone', async () => {
    const [a, b] = await Promise.all([
      mlpJob('pair-a', { seed: 1, epochs: 1 }),
      mlpJob('pair-b', { seed: 2, epochs: 1 }),
    ]);
    await Promise.all([runLocal(a, 2), runLocal(b, 2)]);
    const together = [
      await savedWeights(join(dir.path, 'out', 'pair-a', 'model')),
      await savedWeights(join(dir.path, 'out', 'pair-b', 'model')),
    ];
    await runLocal(a, 2);
    await runLocal(b, 2);
    const alone = [
      await savedWeights(join(dir.path, 'out', 'pair-a', 'model')),
      await savedWeights(join(dir.path, 'out', 'pair-b', 'model')),
    ];
    expect(compareParameters(together[0], alone[0], 0, 0).allClose).toBe(true);
    expect(compareParameters(together[1], alone[1], 0, 0).allClose).toBe(true);
    expect(compareParameters(together[0], together[1], 1e-3, 0).allClose).toBe(false);
  }, 180_000);

  it.each(['a directory', 'a JetStream object store'])(
    'the coordinator killed and restarted mid-epoch resumes at the exact sample from checkpoints in %s: parameters equal an undisturbed run',
    async (where) => {
      const inBucket = where !== 'a directory';
      const bucketUrl = `nats-obj://ckpt-${Date.now()}/restart`;
      const settings = {
        checkpoint: { everySteps: 7, keep: 2, ...(inBucket && { dir: bucketUrl }) },
        workers: { min: 2, max: 2 },
      };
      const reference = await runLocal(
        await mlpJob('restart', { ...settings, checkpoint: { everySteps: 7, keep: 2 } }),
        2,
      );
      const expected = await savedWeights(join(reference.output, 'model'));
      // The same job (the output and checkpoint locations are not part of its hash), written elsewhere.
      const output = join(dir.path, 'out', `restart-disturbed-${inBucket ? 'bucket' : 'dir'}`);
      const job = await mlpJob('restart', { ...settings, output });

      const procs: ChildProcess[] = [];
      let log = '';
      /** Starts a process; `onLine` sees each line it logs as the line comes. */
      const start = (args: string[], onLine?: (line: string) => void) => {
        const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let partial = '';
        // Read what they log (an unread pipe fills up and stalls the process); shown if the test fails.
        p.stderr?.on('data', (b: Buffer) => {
          const text = b.toString();
          log = (log + text).slice(-20_000);
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          if (onLine) for (const line of lines) onLine(line);
        });
        procs.push(p);
        return p;
      };
      const exited = (p: ChildProcess) =>
        new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));
      try {
        // Killed the moment it logs a mid-epoch checkpoint from step 14 on (epochs are 20 steps long).
        let killedAfter: number | undefined;
        const first = start([CLI, 'coordinator', '--job', job, '--nats', nats.url], (line) => {
          const step = Number(/checkpoint written .*\bstep=(\d+)/.exec(line)?.[1] ?? -1);
          if (killedAfter === undefined && step >= 14 && step % 20 !== 0) {
            killedAfter = step;
            first.kill('SIGKILL');
          }
        });
        for (const id of ['local-0', 'local-1'])
          start([workerBinPath(), '--job', job, '--nats', nats.url, '--worker-id', id]);
        await exited(first);
        expect(
          killedAfter,
          `the first coordinator ended before a mid-epoch checkpoint from step 14 on:\n${log}`,
        ).toBeDefined();
        const second = start([CLI, 'coordinator', '--job', job, '--nats', nats.url]);
        expect(await exited(second), log).toBe(0);
        const summary = JSON.parse(await readFile(join(output, 'summary.json'), 'utf8')) as JobSummary;
        expect(summary.resumedAtStep).toBeGreaterThanOrEqual(killedAfter!);
        expect(summary.resumedAtStep! % 20, 'resumed mid-epoch').not.toBe(0);
        expect(summary.steps).toBe(60);
        const resumed = await savedWeights(join(output, 'model'));
        // Bit for bit: the checkpoint carries every optimizer scalar (Adam's β powers) exactly.
        expect(Buffer.from(resumed.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      } finally {
        for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }
    },
    240_000,
  );
});
