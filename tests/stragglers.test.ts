// Stragglers named automatically: a rank whose compute phase exceeds the other ranks' median by
// stragglers.factor (and by stragglers.minSeconds) for stragglers.steps steps in a row is flagged by
// name in the log, in ddp_straggler{worker}, in summary.json and report.html, and in the trace. The
// real run makes one worker slow with a model whose forward pass sleeps on that worker only.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { validateJobSpec, type JobSpec, type Report } from '@tfjs-ddp/common';
import { StragglerDetector, type ChromeTrace, type JobSummary } from '@tfjs-ddp/coordinator';
import { captureLog } from './support/log.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

type StepDone = Extract<Report, { type: 'stepDone' }>;

const DEFAULTS: JobSpec['stragglers'] = { factor: 2, minSeconds: 0.002, steps: 5 };

function report(rank: number, compute: number, count = 8): StepDone {
  return {
    type: 'stepDone',
    job: 'j',
    workerId: `w-${rank}`,
    gen: 1,
    rank,
    step: 0,
    lossSum: 1,
    count,
    nonFinite: false,
    timings: { wait: 0, data: 0.001, compute, readback: 0, allreduce: 0.01, apply: 0.001 },
    tensors: 10,
  };
}

/** Feeds `computes[step][rank]` to a detector; returns the ids flagged and cleared at each step. */
function run(computes: number[][], options = DEFAULTS) {
  const d = new StragglerDetector(options);
  const events = computes.map((c, step) => {
    const ch = d.observe(
      step,
      c.map((s, rank) => report(rank, s)),
    );
    return { flagged: ch.flagged.map((s) => s.workerId), cleared: ch.cleared.map((s) => s.workerId) };
  });
  return { events, spells: d.spells() };
}

describe('the straggler detector', () => {
  it('flags a rank only after stragglers.steps slow steps in a row, and clears it when it keeps up', () => {
    const slow = [0.01, 0.011, 0.05];
    const even = [0.01, 0.011, 0.012];
    const { events, spells } = run([slow, slow, slow, slow, even, slow, slow, slow, slow, slow, slow, even]);
    expect(events.map((e) => e.flagged)).toEqual([[], [], [], [], [], [], [], [], [], ['w-2'], [], []]);
    expect(events[11].cleared).toEqual(['w-2']);
    expect(spells).toEqual([
      {
        workerId: 'w-2',
        rank: 2,
        fromStep: 5,
        toStep: 10,
        steps: 6,
        computeSeconds: 0.05,
        othersMedianSeconds: expect.closeTo(0.0105, 12),
      },
    ]);
  });

  it('leaves a rank alone that is slower by less than the factor or by less than minSeconds', () => {
    const under = Array.from({ length: 8 }, () => [0.01, 0.01, 0.019]);
    expect(run(under).spells).toEqual([]);
    // 10× the others, but only 0.9 ms more: sub-millisecond noise on a tiny model.
    const tiny = Array.from({ length: 8 }, () => [0.0001, 0.0001, 0.001]);
    expect(run(tiny).spells).toEqual([]);
    expect(run(tiny, { ...DEFAULTS, minSeconds: 0 }).spells.map((s) => s.workerId)).toEqual(['w-2']);
  });

  it('compares only the ranks that had samples, and names no one with a single rank', () => {
    const d = new StragglerDetector({ ...DEFAULTS, steps: 1 });
    // Rank 2 had no samples in this (last, uneven) step: its near-zero compute must not make rank 0 or 1 look slow.
    const ch = d.observe(0, [report(0, 0.01), report(1, 0.01), report(2, 0, 0)]);
    expect(ch.flagged).toEqual([]);
    expect(d.observe(1, [report(0, 0.5)]).flagged).toEqual([]);
  });
});

describe('the stragglers field of the job spec', () => {
  const minimal = {
    name: 'j',
    model: { zoo: 'linear' },
    data: { train: { type: 'synthetic-linear', n: 10, w: [1], seed: 1 } },
    optimizer: { type: 'sgd', learningRate: 0.1 },
    loss: 'mse',
    batchSize: 5,
    epochs: 1,
  };
  const problems = (stragglers: unknown) => {
    try {
      validateJobSpec({ ...minimal, stragglers }, 'x.yaml');
      return [];
    } catch (err) {
      return (err as Error).message.split('\n').filter((l) => l.startsWith('x.yaml:'));
    }
  };

  it('defaults to factor 2, minSeconds 0.002 and 5 steps', () => {
    expect(validateJobSpec(minimal, 'x.yaml').stragglers).toEqual(DEFAULTS);
    expect(validateJobSpec({ ...minimal, stragglers: { steps: 3 } }, 'x.yaml').stragglers).toEqual({
      ...DEFAULTS,
      steps: 3,
    });
  });

  it('says what is wrong with a factor, minSeconds or steps it cannot use', () => {
    expect(problems({ factor: 1 })).toEqual(['x.yaml: stragglers.factor: got 1, expected a number > 1']);
    expect(problems({ minSeconds: -1 })).toEqual(['x.yaml: stragglers.minSeconds: got -1, expected a number >= 0']);
    expect(problems({ steps: 0 })).toEqual(['x.yaml: stragglers.steps: got 0, expected a number >= 1']);
    expect(problems({ step: 3 })).toEqual(['x.yaml: stragglers.step: unknown key; did you mean "steps"?']);
  });
});

describe('a real run with one slow worker', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('stragglers');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  it('names that worker in the log, ddp_straggler, summary.json, report.html and the trace, and no other', async () => {
    const job = await writeJob(dir.path, 'stragglers', {
      name: 'stragglers',
      model: {
        module: fileURLToPath(new URL('./fixtures/models/slow-compute.mjs', import.meta.url)),
        params: { inputs: 2, slowWorker: 'local-1', delayMs: 25 },
      },
      data: { train: { type: 'synthetic-linear', n: 480, w: [1, -2], b: 0.5, seed: 1 } },
      optimizer: { type: 'sgd', learningRate: 0.05 },
      loss: 'mse',
      batchSize: 32,
      epochs: 2,
      workers: { min: 2, max: 2 },
      stragglers: { steps: 3 },
    });
    const output = join(dir.path, 'out');
    const trace = join(dir.path, 'trace.json');
    const captured = captureLog();
    const cluster = await startLocalCluster({
      job,
      workers: 2,
      nats: nats.url,
      output,
      trace,
      backend: 'cpu',
      log: captured.log,
      onWorkerOutput: () => {},
    });
    // Stopped also when the test fails or times out (a frozen worker would outlive it).
    onTestFinished(() => cluster.stop());
    // Read while training: the gauge as a scrape sees it after every step.
    const seen = { 'local-0': new Set<string>(), 'local-1': new Set<string>() };
    cluster.events.on('progress', () => {
      void cluster.metrics.metrics().then((text) => {
        for (const [worker, values] of Object.entries(seen)) {
          const value = text.match(new RegExp(`^ddp_straggler\\{(?=[^}]*worker="${worker}")[^}]*\\} (\\d)$`, 'm'))?.[1];
          if (value) values.add(value);
        }
      });
    });
    const summary = await cluster.result();

    // A spell may end at a step where the slow worker happened to keep up and start again: every one names local-1.
    const flagged = captured.lines.filter((l) => /straggler: worker/.test(l));
    expect(
      flagged.length,
      captured.lines.filter((l) => /straggler(:| cleared)/.test(l)).join('\n'),
    ).toBeGreaterThanOrEqual(1);
    for (const line of flagged)
      expect(line).toMatch(/^WARN \[local\/coordinator\] straggler: worker local-1 \(rank \d\) computed more than 2× /);

    expect([...seen['local-0']]).toEqual(['0']);
    expect([...seen['local-1']]).toContain('1');

    const written = JSON.parse(await readFile(join(output, 'summary.json'), 'utf8')) as JobSummary;
    expect(new Set(summary.stragglers.map((s) => s.workerId))).toEqual(new Set(['local-1']));
    expect(written.stragglers).toEqual(summary.stragglers);
    for (const spell of written.stragglers) {
      expect(spell.steps).toBeGreaterThanOrEqual(3);
      expect(spell.computeSeconds).toBeGreaterThan(2 * spell.othersMedianSeconds);
    }
    const { rank } = written.stragglers[0];

    const html = await readFile(join(output, 'report.html'), 'utf8');
    expect(html).toMatch(/<div class="fact straggler"><div class="k">stragglers<\/div><div class="v">local-1<\/div>/);
    expect(html).toMatch(/<h2 id="stragglers">Stragglers<\/h2>[\s\S]*<td>local-1<\/td>/);

    const marks = (JSON.parse(await readFile(trace, 'utf8')) as ChromeTrace).traceEvents.filter(
      (e) => e.cat === 'straggler',
    );
    const flaggedMarks = marks.filter((e) => e.name === 'straggler flagged');
    expect(flaggedMarks).toHaveLength(written.stragglers.length);
    for (const e of flaggedMarks) expect([e.ph, e.pid, e.args?.workerId]).toEqual(['i', rank, 'local-1']);
  }, 60_000);
});
