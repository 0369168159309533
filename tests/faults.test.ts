// Failures and recovery with real processes and a real nats-server: a worker SIGKILLed mid-run, a
// worker joining mid-run, the coordinator killed and restarted, nats-server restarted, two jobs on
// one server. Every test checks what a user cares about: the job finishes, each sample is trained
// once per epoch, and the parameters are those of an undisturbed run.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, workerBinPath, type JobSummary } from 'tfjs-ddp';
import { Objm } from '@nats-io/obj';
import { connectNats, createPrng, parseObjectUrl } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, fashionSubset, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';

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

  it('nats-server killed and restarted mid-run: the job completes with nothing lost', async () => {
    const job = await mlpJob('outage');
    let restarted = false;
    const summary = await runLocal(job, 2, (_cluster, step) => {
      if (step === 10 && !restarted) {
        restarted = true;
        void nats.kill(true).then(async () => {
          await new Promise((r) => setTimeout(r, 1000));
          await nats.start();
        });
      }
    });
    expect(restarted).toBe(true);
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
      const nc = await connectNats({ servers: [nats.url] });
      const checkpointSteps = async (): Promise<number[]> => {
        if (!inBucket) {
          const ckpts = join(output, 'checkpoints');
          return existsSync(ckpts)
            ? (await readdir(ckpts)).filter((n) => n.startsWith('ckpt-')).map((n) => Number(n.slice(5)))
            : [];
        }
        try {
          const os = await new Objm(nc).open(parseObjectUrl(bucketUrl).bucket);
          return (await os.list())
            .filter((o) => o.name.endsWith('/meta.json'))
            .map((o) => Number(/ckpt-(\d+)/.exec(o.name)![1]));
        } catch {
          return [];
        }
      };

      const procs: ChildProcess[] = [];
      let log = '';
      const start = (args: string[]) => {
        const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        // Read what they log (an unread pipe fills up and stalls the process); shown if the test fails.
        p.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-20_000)));
        procs.push(p);
        return p;
      };
      const exited = (p: ChildProcess) =>
        new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));
      try {
        const first = start([CLI, 'coordinator', '--job', job, '--nats', nats.url]);
        for (const id of ['local-0', 'local-1'])
          start([workerBinPath(), '--job', job, '--nats', nats.url, '--worker-id', id]);
        // Kill it once a mid-epoch checkpoint from step 14 on exists (epochs are 20 steps long).
        const deadline = Date.now() + 120_000;
        for (;;) {
          if ((await checkpointSteps()).some((s) => s >= 14 && s % 20 !== 0)) break;
          if (Date.now() > deadline) throw new Error('no mid-epoch checkpoint appeared');
          await new Promise((r) => setTimeout(r, 100));
        }
        first.kill('SIGKILL');
        await exited(first);
        const second = start([CLI, 'coordinator', '--job', job, '--nats', nats.url]);
        expect(await exited(second), log).toBe(0);
        const summary = JSON.parse(await readFile(join(output, 'summary.json'), 'utf8')) as JobSummary;
        expect(summary.resumedAtStep).toBeGreaterThanOrEqual(14);
        expect(summary.steps).toBe(60);
        const resumed = await savedWeights(join(output, 'model'));
        // Bit for bit: the checkpoint carries every optimizer scalar (Adam's β powers) exactly.
        expect(Buffer.from(resumed.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      } finally {
        for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
        await nc.close();
      }
    },
    240_000,
  );
});
