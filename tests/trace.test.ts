// The Chrome trace of a job (`--trace FILE`): every rank's phases of every step, nested under the
// step on the rank's lane, a coordinator lane, stragglers flagged; written at the end of a real
// run and also when the job fails.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { STEP_PHASES, type Report } from '@tfjs-ddp/common';
import { COORDINATOR_PID, TraceRecorder, type ChromeTrace, type TraceEvent } from '@tfjs-ddp/coordinator';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

type StepDone = Extract<Report, { type: 'stepDone' }>;

function report(rank: number, startedAt: number, compute: number): StepDone {
  return {
    type: 'stepDone',
    job: 'j',
    workerId: `w-${rank}`,
    gen: 1,
    rank,
    step: 0,
    lossSum: 1,
    count: 8,
    nonFinite: false,
    timings: { wait: 0.001, data: 0.002, compute, readback: 0.001, allreduce: 0.01, apply: 0.002 },
    startedAt,
    tensors: 10,
  };
}

const complete = (t: ChromeTrace) => t.traceEvents.filter((e) => e.ph === 'X');
const within = (child: TraceEvent, parent: TraceEvent) =>
  child.ts >= parent.ts && child.ts + (child.dur ?? 0) <= parent.ts + (parent.dur ?? 0);

describe('the trace recorder', () => {
  it('lays every phase out from the start the worker reported, nested inside its step', () => {
    const origin = 1_700_000_000_000;
    const trace = new TraceRecorder({ job: 'j', origin });
    trace.step({ step: 0, epoch: 0, generation: 1, commandAt: origin + 5, doneAt: origin + 30 }, [
      report(0, origin + 10, 0.004),
    ]);
    const events = complete(trace.trace()).filter((e) => e.pid === 0);
    const step = events.find((e) => e.name === 'step 0')!;
    expect(events.map((e) => e.name)).toEqual(['step 0', ...STEP_PHASES]);
    // wait ends where the step started on the worker: 10 ms after the origin, in microseconds.
    expect(events.find((e) => e.name === 'data')?.ts).toBe(10_000);
    expect(events.find((e) => e.name === 'wait')?.ts).toBe(9_000);
    expect(events.find((e) => e.name === 'compute')?.dur).toBe(4_000);
    for (const e of events.slice(1)) expect(within(e, step)).toBe(true);
    const coordinator = complete(trace.trace()).find((e) => e.pid === COORDINATOR_PID)!;
    expect([coordinator.ts, coordinator.dur]).toEqual([5_000, 25_000]);
  });

  it('flags the rank whose compute is well beyond the others as the straggler', () => {
    const origin = Date.now();
    const trace = new TraceRecorder({ job: 'j', origin });
    const at = { step: 0, epoch: 0, generation: 1, commandAt: origin, doneAt: origin + 100 };
    trace.step(at, [report(0, origin, 0.01), report(1, origin, 0.011), report(2, origin, 0.05)]);
    trace.step({ ...at, step: 1 }, [report(0, origin, 0.01), report(1, origin, 0.011), report(2, origin, 0.012)]);
    const events = complete(trace.trace());
    const flagged = events.filter((e) => e.args?.straggler === true && e.name === 'compute');
    expect(flagged.map((e) => [e.pid, e.args?.step, e.cname])).toEqual([[2, 0, 'terrible']]);
    const steps = events.filter((e) => e.pid === COORDINATOR_PID);
    expect(steps.map((e) => e.args?.straggler)).toEqual([2, undefined]);
  });

  it('stops keeping steps beyond its event budget and says how many it left out', () => {
    const origin = Date.now();
    const trace = new TraceRecorder({ job: 'j', origin, maxEvents: 20 });
    for (let step = 0; step < 5; step++)
      trace.step({ step, epoch: 0, generation: 1, commandAt: origin, doneAt: origin + 1 }, [report(0, origin, 0.01)]);
    const t = trace.trace();
    expect(complete(t)).toHaveLength(16);
    expect(t.otherData.stepsNotRecorded).toBe(3);
  });
});

describe('the trace of a real run', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let job: string;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('trace');
    job = await writeJob(dir.path, 'trace', {
      name: 'trace',
      model: { zoo: 'linear' },
      data: { train: { type: 'synthetic-linear', n: 600, w: [1, -2], b: 0.5, noise: 0.01, seed: 1 } },
      optimizer: { type: 'sgd', learningRate: 0.05 },
      loss: 'mse',
      batchSize: 40,
      epochs: 2,
      workers: { min: 1, max: 2 },
    });
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  it('holds every phase of every step for every rank, each event with name, ph, ts, dur and pid', async () => {
    const path = join(dir.path, 'trace.json');
    const cluster = await startLocalCluster({
      job,
      workers: 2,
      nats: nats.url,
      output: join(dir.path, 'out'),
      trace: path,
      onWorkerOutput: () => {},
    });
    const summary = await cluster.result().finally(() => cluster.stop());
    const trace = JSON.parse(await readFile(path, 'utf8')) as ChromeTrace;

    expect(Array.isArray(trace.traceEvents)).toBe(true);
    const names = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name');
    expect(names.map((e) => [e.pid, e.args?.name])).toEqual([
      [COORDINATOR_PID, 'coordinator'],
      [0, 'rank 0'],
      [1, 'rank 1'],
    ]);
    const events = complete(trace);
    for (const e of events) {
      expect(typeof e.name).toBe('string');
      expect(e.ph).toBe('X');
      expect(Number.isInteger(e.ts)).toBe(true);
      expect(e.dur).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(e.pid)).toBe(true);
    }
    for (const rank of [0, 1]) {
      const lane = events.filter((e) => e.pid === rank);
      const steps = lane.filter((e) => e.cat === 'step');
      expect(steps).toHaveLength(summary.steps);
      for (const phase of STEP_PHASES) expect(lane.filter((e) => e.name === phase)).toHaveLength(summary.steps);
      const first = steps[0];
      for (const p of lane.filter((e) => e.cat === 'phase' && e.args?.step === first.args?.step))
        expect(within(p, first)).toBe(true);
      // Time flows forward: each step on a lane starts after the previous one ended.
      for (let i = 1; i < steps.length; i++)
        expect(steps[i].ts).toBeGreaterThanOrEqual(steps[i - 1].ts + (steps[i - 1].dur ?? 0));
    }
    expect(events.filter((e) => e.pid === COORDINATOR_PID)).toHaveLength(summary.steps);
  }, 60_000);

  it('is written when the job fails too, with the steps done until then', async () => {
    const path = join(dir.path, 'failed-trace.json');
    const cluster = await startLocalCluster({
      job,
      workers: 2,
      nats: nats.url,
      output: join(dir.path, 'failed'),
      trace: path,
      onWorkerOutput: () => {},
    });
    try {
      const atStep3 = new Promise<void>((resolve) =>
        cluster.events.on('progress', (p) => p.globalStep === 3 && resolve()),
      );
      // A job that fails (or ends) before step 3 fails the test at once instead of leaving it waiting.
      const endedFirst = cluster.result().then(() => {
        throw new Error('expected the job to reach step 3 while training, got the end of the job first');
      });
      endedFirst.catch(() => {});
      await Promise.race([atStep3, endedFirst]);
      await cluster.stop();
      await expect(cluster.result()).rejects.toThrow(/stopped/);
    } finally {
      await cluster.stop();
    }
    const trace = JSON.parse(await readFile(path, 'utf8')) as ChromeTrace;
    const steps = complete(trace).filter((e) => e.pid === COORDINATOR_PID);
    expect(steps.length).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
