// The Prometheus metrics of workers and coordinator (DESIGN §7): the fixed names, types and labels
// the Grafana dashboard is built on, the /metrics, /healthz and /readyz endpoint, and counters
// that follow a real run: an in-process coordinator and two in-process workers train a job, and
// every counter then agrees with the job summary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import {
  INVALID_REASONS,
  STEP_PHASES,
  busBandwidth,
  createCoordinatorMetrics,
  createWorkerMetrics,
  parseJobSpec,
  startMetricsServer,
  type MessageObserver,
  type MetricsRegistry,
  type WorkerMetrics,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { startInProcessJob } from './support/in-process.js';
import { tempDir, type TempDir } from './support/jobs.js';

type Metric = MetricObjectWithValues<MetricValue<string>>;

async function metricsOf(registry: MetricsRegistry): Promise<Map<string, Metric>> {
  const all = (await registry.getMetricsAsJSON()) as Metric[];
  return new Map(all.map((m) => [m.name, m]));
}

/** The value of `name` for the series whose labels include `labels` (default labels included). */
async function valueOf(registry: MetricsRegistry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await registry.metrics();
  const line = text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .find((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  if (!line) throw new Error(`no series ${name} with ${JSON.stringify(labels)} in:\n${text}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

const WORKER_METRICS: [string, string, string[]][] = [
  ['ddp_step_phase_seconds', 'histogram', ['phase']],
  ['ddp_samples_total', 'counter', []],
  ['ddp_bytes_sent_total', 'counter', []],
  ['ddp_bytes_received_total', 'counter', []],
  ['ddp_invalid_messages_total', 'counter', ['reason']],
  ['ddp_stale_messages_total', 'counter', []],
  ['ddp_aborted_steps_total', 'counter', []],
  ['ddp_restarts_total', 'counter', []],
  ['ddp_loss', 'gauge', []],
  ['ddp_world_size', 'gauge', []],
  ['ddp_generation', 'gauge', []],
  ['ddp_allreduce_busbw_bytes_per_second', 'gauge', []],
  ['ddp_tensors', 'gauge', []],
];

const COORDINATOR_METRICS: [string, string, string[]][] = [
  ['ddp_job_steps_total', 'counter', []],
  ['ddp_job_samples_total', 'counter', []],
  ['ddp_job_aborted_steps_total', 'counter', []],
  ['ddp_job_restarts_total', 'counter', []],
  ['ddp_job_loss', 'gauge', []],
  ['ddp_job_epoch', 'gauge', []],
  ['ddp_job_world_size', 'gauge', []],
  ['ddp_job_generation', 'gauge', []],
  ['ddp_job_validation', 'gauge', ['metric']],
  ['ddp_job_step_seconds', 'histogram', []],
  ['ddp_job_eta_seconds', 'gauge', []],
  ['ddp_straggler', 'gauge', ['worker']],
  ['ddp_invalid_messages_total', 'counter', ['reason']],
];

describe('worker metrics', () => {
  it('have the fixed names, types and labels, with process metrics alongside', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-0', tensors: () => 3 });
    const metrics = await metricsOf(m.registry);
    for (const [name, type, labels] of WORKER_METRICS) {
      expect(metrics.get(name)?.type, name).toBe(type);
      for (const label of labels) expect(metrics.get(name)?.values.every((v) => label in v.labels)).toBe(true);
    }
    expect(metrics.has('process_cpu_seconds_total')).toBe(true);
    expect(metrics.has('nodejs_heap_size_used_bytes')).toBe(true);
    const text = await m.registry.metrics();
    // Every series carries the job, the worker and its rank (-1 before it joins a generation).
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/ddp_job="j"/);
      expect(line).toMatch(/worker="w-0"/);
      expect(line).toMatch(/rank="-1"/);
    }
    // Every phase and every drop reason is exported from the start, at zero.
    for (const phase of STEP_PHASES)
      expect(await valueOf(m.registry, 'ddp_step_phase_seconds_count', { phase })).toBe(0);
    for (const reason of INVALID_REASONS)
      expect(await valueOf(m.registry, 'ddp_invalid_messages_total', { reason })).toBe(0);
    expect(await valueOf(m.registry, 'ddp_tensors')).toBe(3);
  });

  it('record a step: phases, samples, loss and the bus bandwidth of its all-reduce', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-0', processMetrics: false });
    m.joined({ generation: 3, rank: 1, worldSize: 4 });
    const timings = { wait: 0.002, data: 0.001, compute: 0.02, readback: 0.003, allreduce: 0.01, apply: 0.004 };
    m.step({ timings, samples: 16, lossSum: 8, gradientBytes: 4_000_000, worldSize: 4 });
    m.step({ timings, samples: 10, lossSum: 1, gradientBytes: 4_000_000, worldSize: 4 });

    const r = m.registry;
    expect(await valueOf(r, 'ddp_samples_total', { rank: '1' })).toBe(26);
    expect(await valueOf(r, 'ddp_loss')).toBeCloseTo(0.1);
    expect(await valueOf(r, 'ddp_world_size')).toBe(4);
    expect(await valueOf(r, 'ddp_generation')).toBe(3);
    expect(await valueOf(r, 'ddp_allreduce_busbw_bytes_per_second')).toBeCloseTo((4e6 / 0.01) * (6 / 4));
    for (const phase of STEP_PHASES) {
      expect(await valueOf(r, 'ddp_step_phase_seconds_count', { phase })).toBe(2);
      expect(await valueOf(r, 'ddp_step_phase_seconds_sum', { phase })).toBeCloseTo(2 * timings[phase]);
    }
  });

  it('count data-plane bytes, stale and invalid messages, and pass each call on to the next observer', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-0', processMetrics: false });
    const seen: string[] = [];
    const next: MessageObserver = {
      invalid: (reason) => seen.push(`invalid ${reason}`),
      stale: () => seen.push('stale'),
      bytesIn: (n) => seen.push(`in ${n}`),
      bytesOut: (n) => seen.push(`out ${n}`),
    };
    const o = m.observer(next);
    o.bytesIn?.(100);
    o.bytesIn?.(20);
    o.bytesOut?.(64);
    o.stale?.('s');
    o.invalid('range', 'shard 9 of 4', 's');
    o.invalid('range', 'shard 9 of 4', 's');
    expect(await valueOf(m.registry, 'ddp_bytes_received_total')).toBe(120);
    expect(await valueOf(m.registry, 'ddp_bytes_sent_total')).toBe(64);
    expect(await valueOf(m.registry, 'ddp_stale_messages_total')).toBe(1);
    expect(await valueOf(m.registry, 'ddp_invalid_messages_total', { reason: 'range' })).toBe(2);
    expect(await valueOf(m.registry, 'ddp_invalid_messages_total', { reason: 'schema' })).toBe(0);
    expect(seen).toEqual(['in 100', 'in 20', 'out 64', 'stale', 'invalid range', 'invalid range']);
  });

  it('relabel every series with the new rank when the worker joins another generation, counting restarts', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-5', processMetrics: false });
    expect(m.ready).toBe(false);
    m.joined({ generation: 1, rank: 2, worldSize: 3 });
    expect(m.ready).toBe(true);
    m.step({ timings: { compute: 0.01 }, samples: 5, lossSum: 1, gradientBytes: 40, worldSize: 3 });
    expect(await valueOf(m.registry, 'ddp_restarts_total', { rank: '2' })).toBe(0);
    m.joined({ generation: 2, rank: 0, worldSize: 2 });
    expect(await valueOf(m.registry, 'ddp_restarts_total', { rank: '0' })).toBe(1);
    expect(await valueOf(m.registry, 'ddp_samples_total', { rank: '0' })).toBe(5);
    expect(await m.registry.metrics()).not.toMatch(/rank="2"/);
    m.stepAborted();
    expect(await valueOf(m.registry, 'ddp_aborted_steps_total')).toBe(1);
    m.joined({ generation: 3, rank: -1, worldSize: 2 });
    expect(m.ready).toBe(false);
    expect(await valueOf(m.registry, 'ddp_world_size')).toBe(0);
    // A generation it was left out of is no restart; joining the next one as a member is.
    m.joined({ generation: 4, rank: 1, worldSize: 3 });
    expect(await valueOf(m.registry, 'ddp_restarts_total', { rank: '1' })).toBe(2);
  });

  it('define bus bandwidth as NCCL-tests does, and none for one rank or no time', () => {
    expect(busBandwidth(1e6, 0.5, 2)).toBe(2e6);
    expect(busBandwidth(1e6, 1, 8)).toBeCloseTo(1.75e6);
    expect(busBandwidth(1e6, 1, 1)).toBe(0);
    expect(busBandwidth(1e6, 0, 4)).toBe(0);
  });
});

describe('coordinator metrics', () => {
  it('have the fixed names, types and labels, with the job label on every series', async () => {
    const m = createCoordinatorMetrics({ job: 'jobx' });
    m.validation({ loss: 0.3, accuracy: 0.9 });
    const metrics = await metricsOf(m.registry);
    for (const [name, type, labels] of COORDINATOR_METRICS) {
      expect(metrics.get(name)?.type, name).toBe(type);
      for (const label of labels) expect(metrics.get(name)?.values.every((v) => label in v.labels)).toBe(true);
    }
    expect(metrics.has('process_resident_memory_bytes')).toBe(true);
    const text = await m.registry.metrics();
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/ddp_job="jobx"/);
  });

  it('follow generations, epochs, steps and validation', async () => {
    const m = createCoordinatorMetrics({ job: 'j', processMetrics: false });
    const r = m.registry;
    m.generation({ generation: 1, worldSize: 3, restart: false });
    m.epoch(1);
    m.step({ seconds: 0.05, samples: 64, loss: 0.7 });
    m.step({ seconds: 0.07, samples: 36, loss: 0.5 });
    m.stepAborted();
    m.generation({ generation: 2, worldSize: 2, restart: true });
    m.validation({ loss: 0.4, accuracy: 0.8 });
    expect(await valueOf(r, 'ddp_job_steps_total')).toBe(2);
    expect(await valueOf(r, 'ddp_job_samples_total')).toBe(100);
    expect(await valueOf(r, 'ddp_job_loss')).toBe(0.5);
    expect(await valueOf(r, 'ddp_job_epoch')).toBe(1);
    expect(await valueOf(r, 'ddp_job_aborted_steps_total')).toBe(1);
    expect(await valueOf(r, 'ddp_job_restarts_total')).toBe(1);
    expect(await valueOf(r, 'ddp_job_world_size')).toBe(2);
    expect(await valueOf(r, 'ddp_job_generation')).toBe(2);
    expect(await valueOf(r, 'ddp_job_validation', { metric: 'accuracy' })).toBe(0.8);
    expect(await valueOf(r, 'ddp_job_step_seconds_count')).toBe(2);
    expect(await valueOf(r, 'ddp_job_step_seconds_sum')).toBeCloseTo(0.12);
  });

  it('give the estimated time left once it is known (NaN before), and 0/1 per worker for stragglers', async () => {
    const m = createCoordinatorMetrics({ job: 'j', processMetrics: false });
    expect(await valueOf(m.registry, 'ddp_job_eta_seconds')).toBeNaN();
    m.eta(42.5);
    m.eta(Infinity);
    expect(await valueOf(m.registry, 'ddp_job_eta_seconds')).toBeNaN();
    m.eta(42.5);
    expect(await valueOf(m.registry, 'ddp_job_eta_seconds')).toBe(42.5);
    m.straggler('w-0', false);
    m.straggler('w-1', true);
    expect(await valueOf(m.registry, 'ddp_straggler', { worker: 'w-0' })).toBe(0);
    expect(await valueOf(m.registry, 'ddp_straggler', { worker: 'w-1' })).toBe(1);
    m.straggler('w-1', false);
    expect(await valueOf(m.registry, 'ddp_straggler', { worker: 'w-1' })).toBe(0);
  });

  it('count what the coordinator drops, by reason, and pass each call on to the next observer', async () => {
    const m = createCoordinatorMetrics({ job: 'j', processMetrics: false });
    const seen: string[] = [];
    const o = m.observer({ invalid: (reason) => seen.push(reason) });
    o.invalid('version', 'v9', 'ddp.j.report');
    expect(await valueOf(m.registry, 'ddp_invalid_messages_total', { reason: 'version' })).toBe(1);
    expect(await valueOf(m.registry, 'ddp_invalid_messages_total', { reason: 'schema' })).toBe(0);
    expect(seen).toEqual(['version']);
  });
});

describe('the /metrics endpoint', () => {
  it('serves the text format, /healthz, and /readyz once ready, on the port it picked', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-0', processMetrics: false });
    const server = await startMetricsServer('127.0.0.1:0', { registry: m.registry, ready: () => m.ready });
    try {
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(server.address).not.toBe('127.0.0.1:0');
      const base = `http://${server.address}`;
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await metrics.text()).toMatch(/^# HELP ddp_step_phase_seconds /m);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      m.joined({ generation: 1, rank: 0, worldSize: 1 });
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const missing = await fetch(`${base}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.text()).toMatch(/try \/metrics/);
    } finally {
      await server.close();
    }
  });

  it('refuses an address that is not HOST:PORT, saying what it expected', async () => {
    const m = createWorkerMetrics({ job: 'j', workerId: 'w-0', processMetrics: false });
    await expect(startMetricsServer('localhost', { registry: m.registry, ready: () => true })).rejects.toThrow(
      /expected HOST:PORT/,
    );
  });
});

describe('metrics of a real run', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('metrics');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  it('agree with the job summary on the coordinator and on every worker', async () => {
    const spec = parseJobSpec(
      JSON.stringify({
        name: 'metrics-run',
        model: { zoo: 'binary-mlp' },
        data: { train: { type: 'synthetic-binary', n: 400, seed: 4 }, validation: { fraction: 0.25 } },
        optimizer: { type: 'adam', learningRate: 0.01 },
        loss: 'binaryCrossentropy',
        metrics: ['accuracy'],
        batchSize: 32,
        epochs: 2,
        workers: { min: 2, max: 2 },
        output: `${dir.path}/out`,
      }),
      'metrics-run.json',
    );
    // Ranks follow the sorted worker ids, so workers[rank] holds the metrics of that rank.
    const ids = ['w-0', 'w-1'];
    const workers: WorkerMetrics[] = ids.map((id) =>
      createWorkerMetrics({ job: spec.name, workerId: `${spec.name}-${id}`, processMetrics: false }),
    );
    const job = startInProcessJob(spec, nats.url, ids, (id) => ({ metrics: workers[ids.indexOf(id)] }));
    const summary = await job.result();
    // A classification job has no fitted line for the report.
    expect(summary.fit).toBeUndefined();

    const c = job.coordinator.metrics;
    const samples = summary.epochs.reduce((n, e) => n + e.samples, 0);
    expect(await valueOf(c, 'ddp_job_steps_total')).toBe(summary.steps);
    expect(await valueOf(c, 'ddp_job_samples_total')).toBe(samples);
    expect(await valueOf(c, 'ddp_job_step_seconds_count')).toBe(summary.steps);
    expect(await valueOf(c, 'ddp_job_epoch')).toBe(2);
    expect(await valueOf(c, 'ddp_job_world_size')).toBe(2);
    expect(await valueOf(c, 'ddp_job_generation')).toBe(summary.generation);
    expect(await valueOf(c, 'ddp_job_validation', { metric: 'accuracy' })).toBe(summary.epochs[1].validation?.accuracy);
    expect(await valueOf(c, 'ddp_job_aborted_steps_total')).toBe(0);

    let workerSamples = 0;
    for (const [rank, m] of workers.entries()) {
      const r = m.registry;
      workerSamples += await valueOf(r, 'ddp_samples_total', { rank: String(rank) });
      for (const phase of STEP_PHASES)
        expect(await valueOf(r, 'ddp_step_phase_seconds_count', { phase })).toBe(summary.steps);
      expect(await valueOf(r, 'ddp_bytes_sent_total')).toBeGreaterThan(0);
      expect(await valueOf(r, 'ddp_bytes_received_total')).toBeGreaterThan(0);
      expect(await valueOf(r, 'ddp_allreduce_busbw_bytes_per_second')).toBeGreaterThan(0);
      expect(await valueOf(r, 'ddp_world_size')).toBe(2);
      expect(await valueOf(r, 'ddp_invalid_messages_total', { reason: 'schema' })).toBe(0);
      expect(Number.isFinite(await valueOf(r, 'ddp_loss'))).toBe(true);
    }
    expect(workerSamples).toBe(samples);
  }, 60_000);
});
