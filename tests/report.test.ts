// report.html: every job writes a self-contained page into its output directory. A real run's page
// is opened in headless Chromium (playwright-core) to check that the charts are drawn with data
// from every epoch, that a one-feature regression shows its fitted line, and that the page loads
// nothing from anywhere else.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { STEP_PHASES, parseJobSpec } from '@tfjs-ddp/common';
import { RunHistoryRecorder, lineChart, niceTicks, renderReport, type JobSummary } from '@tfjs-ddp/coordinator';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

const CHROMIUM = '/usr/bin/chromium';

describe('report charts', () => {
  it('pick round tick values that cover the data', () => {
    expect(niceTicks(0.13, 0.92, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 7, 6, true)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(niceTicks(5, 5, 5).length).toBeGreaterThan(1);
    expect(niceTicks(0, Infinity, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(NaN, 3, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('draw one marker per point and escape what they show', () => {
    const svg = lineChart({
      id: 'c',
      title: 'a <b> & "c"',
      xLabel: 'epoch',
      yLabel: 'loss',
      series: [
        {
          name: 'w<1>',
          markers: true,
          points: [
            [1, 0.5],
            [2, 0.25],
            [3, NaN],
          ],
        },
      ],
    });
    expect(svg.match(/<circle /g)).toHaveLength(2);
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).toContain('data-series="w&lt;1&gt;"');
    expect(svg).not.toContain('<b>');
  });

  it('say so when a chart has nothing to draw', () => {
    expect(lineChart({ id: 'c', title: 't', xLabel: 'x', yLabel: 'y', series: [] })).toContain('no data recorded');
  });
});

describe('the run history', () => {
  it('keeps a bounded number of evenly averaged per-step loss points however long the run', () => {
    const history = new RunHistoryRecorder(performance.now(), 500);
    for (let step = 0; step < 10_000; step++) history.step(step, step % 2, []);
    const { stepLoss } = history.history();
    expect(stepLoss.length).toBeLessThanOrEqual(500);
    expect(stepLoss.length).toBeGreaterThan(250);
    for (const p of stepLoss) expect(p.loss).toBeCloseTo(0.5);
    for (let i = 1; i < stepLoss.length; i++) expect(stepLoss[i].step).toBeGreaterThan(stepLoss[i - 1].step);
  });

  it('gives each worker a samples/s figure for every epoch, null where it was not a member', () => {
    const history = new RunHistoryRecorder();
    const done = (workerId: string, count: number) =>
      ({
        workerId,
        count,
        timings: { wait: 0, data: 0.001, compute: 0.002, readback: 0, allreduce: 0.003, apply: 0.001 },
      }) as never;
    history.step(0, 1, [done('a', 10), done('b', 10)]);
    history.epochEnd(0, 2);
    history.step(1, 1, [done('a', 20)]);
    history.epochEnd(1, 4);
    history.step(2, 1, [done('a', 6), done('c', 6)]);
    history.epochEnd(2, 3);
    const h = history.history();
    expect(h.workerSamplesPerSec).toEqual([
      { workerId: 'a', perEpoch: [5, 5, 2] },
      { workerId: 'b', perEpoch: [5, null, null] },
      { workerId: 'c', perEpoch: [null, null, 2] },
    ]);
    expect(h.epochs).toEqual([0, 1, 2]);
    expect(h.phaseMeans[0].allreduce).toBeCloseTo(0.003);
  });
});

describe('report.html of a real run', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let browser: Browser;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('report');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it('is installed where the test expects it (apt-get install -y chromium)', () => {
    expect(existsSync(CHROMIUM)).toBe(true);
  });

  it('draws loss, validation, per-step loss, samples/s per worker, phases, world size and the fitted line', async () => {
    const epochs = 4;
    const job = await writeJob(dir.path, 'report', {
      name: 'report',
      model: { zoo: 'linear' },
      data: {
        train: { type: 'synthetic-linear', n: 800, w: [2], b: 0.5, noise: 0.3, seed: 1 },
        validation: { fraction: 0.25 },
        test: { type: 'synthetic-linear', n: 300, w: [2], b: 0.5, noise: 0.3, seed: 2 },
      },
      optimizer: { type: 'sgd', learningRate: 0.05 },
      loss: 'mse',
      batchSize: 40,
      epochs,
      workers: { min: 1, max: 2 },
    });
    const output = join(dir.path, 'out');
    const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, output, onWorkerOutput: () => {} });
    const summary = await cluster.result().finally(() => cluster.stop());
    expect(summary.epochs).toHaveLength(epochs);
    const written = JSON.parse(await readFile(join(output, 'summary.json'), 'utf8')) as JobSummary;
    expect(written.history.phaseMeans).toHaveLength(epochs);
    expect(written.fit).toHaveLength(200);

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(join(output, 'report.html')).href;
    await page.goto(url);
    const count = (selector: string) => page.locator(selector).count();
    const text = (selector: string) => page.locator(selector).allTextContents();

    // Loss per epoch: a marker per epoch for train and for validation, with both axes labelled.
    for (const series of ['train', 'validation']) {
      expect(await count(`svg[data-chart="loss"] g[data-series="${series}"] circle`)).toBe(epochs);
      const points = await page
        .locator(`svg[data-chart="loss"] g[data-series="${series}"] polyline`)
        .getAttribute('points');
      expect(points?.trim().split(/\s+/)).toHaveLength(epochs);
    }
    expect(await text('svg[data-chart="loss"] .x-label')).toEqual(['epoch']);
    expect(await text('svg[data-chart="loss"] .y-label')).toEqual(['loss']);
    expect(await text('svg[data-chart="loss"] .x-tick')).toEqual(['1', '2', '3', '4']);
    expect(await count('svg[data-chart="loss"] .y-tick')).toBeGreaterThanOrEqual(3);

    // Per-step loss: one point per step (the run is short enough not to be averaged).
    const stepPoints = await page.locator('svg[data-chart="step-loss"] polyline').getAttribute('points');
    expect(stepPoints?.trim().split(/\s+/)).toHaveLength(summary.steps);

    // Samples/s per worker: one series per worker, a marker per epoch each.
    for (const worker of ['local-0', 'local-1'])
      expect(await count(`svg[data-chart="throughput"] g[data-series="${worker}"] circle`)).toBe(epochs);

    // Step time by phase: a stacked bar part per phase and epoch.
    for (const phase of STEP_PHASES)
      expect(await count(`svg[data-chart="phases"] g[data-series="${phase}"] rect.bar`)).toBe(epochs);

    // World size: 2 workers from the first step to the last.
    expect(await count('svg[data-chart="world-size"] polyline')).toBe(1);
    expect(await text('svg[data-chart="world-size"] .y-tick')).toContain('2');

    // The one-feature regression: the test points and the model's line through them.
    expect(await count('svg[data-chart="fit"] g[data-series="data"] circle')).toBe(200);
    expect(await count('svg[data-chart="fit"] g[data-series="model"] polyline')).toBe(1);

    expect(await page.locator('pre').textContent()).toMatch(/^name: report$/m);
    expect(await count('script')).toBe(0);
    expect(requests).toEqual([url]);

    await page.close();
  }, 60_000);

  it('draws no fit chart and no validation-metrics chart when the summary has neither', () => {
    const spec = parseJobSpec(
      JSON.stringify({
        name: 'cls',
        model: { zoo: 'perceptron' },
        data: { train: { type: 'synthetic-binary', n: 10, seed: 1 } },
        optimizer: { type: 'sgd', learningRate: 0.1 },
        loss: 'binaryCrossentropy',
        batchSize: 5,
        epochs: 1,
      }),
      'cls.json',
    );
    const summary = {
      job: 'cls',
      status: 'completed',
      backends: { w: 'cpu' },
      worldSize: 1,
      generation: 1,
      epochs: [{ epoch: 0, trainLoss: 0.6, samples: 10, seconds: 1, samplesPerSec: 10 }],
      steps: 2,
      samplesPerSec: 10,
      wallSeconds: 2,
      output: '/tmp/cls',
      history: {
        stepLoss: [
          { step: 0, loss: 0.7 },
          { step: 1, loss: 0.5 },
        ],
        epochs: [0],
        workerSamplesPerSec: [{ workerId: 'w', perEpoch: [10] }],
        phaseMeans: [Object.fromEntries(STEP_PHASES.map((p) => [p, 0.001]))],
        worldSize: [{ generation: 1, worldSize: 1, step: 0, seconds: 0.5 }],
      },
      stragglers: [],
    } as unknown as JobSummary;
    const html = renderReport(summary, spec);
    expect(html).toContain('data-chart="loss"');
    expect(html).not.toContain('data-chart="fit"');
    expect(html).not.toContain('data-chart="validation"');
  });
});
