// The Grafana dashboard (deploy/grafana/dashboards/tfjs-ddp.json): every query is valid PromQL, asks
// only for metrics the coordinator and workers export (the DCGM panels excepted, and marked as
// such), follows the ddp_job variable, and returns data from a real Prometheus that scraped the
// coordinator's and workers' own metric registries while they recorded training steps.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createCoordinatorMetrics,
  createWorkerMetrics,
  freePort,
  startMetricsServer,
  type MetricsServer,
} from '@tfjs-ddp/common';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasCommand = (cmd: string) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;

interface Target {
  expr: string;
  refId: string;
  datasource: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults: { custom?: { stacking?: { mode: string } } } };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/tfjs-ddp.json'), 'utf8')) as Dashboard;
const panels = dashboard.panels.filter((p) => p.type !== 'row');
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, expr: t.expr })));
const needsDcgm = (p: Panel) => /needs dcgm-exporter/i.test(p.description ?? '');
const ownQueries = queries.filter((q) => !needsDcgm(q.panel));
const JOB = 'dashboard-check';

/** The expression as Grafana sends it, with its variables filled in. */
const expand = (expr: string, job = JOB) =>
  expr.replaceAll('$__rate_interval', '5s').replaceAll('$ddp_job', job).replaceAll('${ddp_job}', job);

/** Metric names in an expression (ddp_job alone is the label). */
const metricNames = (expr: string) =>
  [...expr.matchAll(/\b(ddp_\w+|DCGM_\w+)\b/g)].map((m) => m[1]).filter((name) => name !== 'ddp_job');

function workerMetrics(rank: number) {
  return createWorkerMetrics({ job: JOB, workerId: `worker-${rank}`, tensors: () => 40 + rank, processMetrics: false });
}

/** Every series name the registries export: histograms as their _bucket, _sum and _count series. */
async function exportedNames(): Promise<Set<string>> {
  const registries = [
    workerMetrics(0).registry,
    createCoordinatorMetrics({ job: JOB, processMetrics: false }).registry,
  ];
  const names = new Set<string>();
  for (const registry of registries) {
    for (const m of await registry.getMetricsAsJSON()) {
      if (String(m.type) === 'histogram')
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
      else names.add(m.name);
    }
  }
  return names;
}

function promtoolRules(exprs: string[]): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
  try {
    const rules = {
      groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `panel:query${i}`, expr })) }],
    };
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.json')], { encoding: 'utf8' });
    return { status: r.status, output: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('Grafana dashboard', () => {
  it('has a ddp_job variable listing the jobs the workers report, and a data source variable', () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const query = vars.ddp_job.query;
    expect(typeof query === 'string' ? query : query.query).toBe('label_values(ddp_samples_total, ddp_job)');
    for (const p of panels) expect(p.datasource?.uid, p.title).toBe('${datasource}');
    for (const q of queries) expect(q.panel.targets?.every((t) => t.datasource.uid === '${datasource}')).toBe(true);
  });

  it('lays out panels with unique ids on the 24-column grid without overlaps', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
    }
  });

  it('covers every metric the coordinator and workers export for training, and GPU utilisation', () => {
    const used = new Set(queries.flatMap((q) => metricNames(q.expr)));
    const wanted = [
      ['ddp_step_phase_seconds_sum', 'ddp_step_phase_seconds_count', 'ddp_step_phase_seconds_bucket'],
      ['ddp_samples_total', 'ddp_bytes_sent_total', 'ddp_bytes_received_total', 'ddp_invalid_messages_total'],
      ['ddp_stale_messages_total', 'ddp_aborted_steps_total', 'ddp_restarts_total', 'ddp_loss', 'ddp_world_size'],
      ['ddp_generation', 'ddp_allreduce_busbw_bytes_per_second', 'ddp_tensors'],
      ['ddp_job_steps_total', 'ddp_job_samples_total', 'ddp_job_aborted_steps_total', 'ddp_job_restarts_total'],
      ['ddp_job_loss', 'ddp_job_epoch', 'ddp_job_world_size', 'ddp_job_generation', 'ddp_job_validation'],
      ['ddp_job_step_seconds_bucket', 'ddp_job_eta_seconds', 'ddp_straggler', 'DCGM_FI_DEV_GPU_UTIL'],
    ].flat();
    expect(wanted.filter((m) => !used.has(m))).toEqual([]);
  });

  it('shows the estimated time left in seconds and the workers flagged as stragglers', () => {
    const eta = panels.find((p) => p.targets?.some((t) => t.expr.includes('ddp_job_eta_seconds')));
    expect(eta?.title).toBe('ETA');
    expect((eta?.fieldConfig?.defaults as { unit?: string } | undefined)?.unit).toBe('s');
    const stragglers = panels.find((p) => p.targets?.some((t) => t.expr.includes('ddp_straggler')));
    expect(stragglers?.targets?.map((t) => t.expr)).toEqual(['sum(ddp_straggler{ddp_job=~"$ddp_job"})']);
  });

  it('breaks step time down by phase: stacked means from the histogram, and p95', () => {
    const stacked = panels.find(
      (p) => p.fieldConfig?.defaults.custom?.stacking?.mode === 'normal' && p.title.includes('phase'),
    );
    expect(stacked?.targets?.map((t) => t.expr)).toContainEqual(
      expect.stringMatching(
        /^sum by \(phase\) \(rate\(ddp_step_phase_seconds_sum\{[^}]*\}\[\$__rate_interval\]\)\) \/ sum by \(phase\) \(rate\(ddp_step_phase_seconds_count\{/,
      ),
    );
    expect(queries.map((q) => q.expr)).toContainEqual(
      expect.stringMatching(/^histogram_quantile\(0\.95, sum by \(phase, le\) \(rate\(ddp_step_phase_seconds_bucket\{/),
    );
  });

  it('asks only for metrics the registries export, each filtered by the ddp_job variable', async () => {
    const exported = await exportedNames();
    for (const { panel, expr } of ownQueries) {
      for (const name of metricNames(expr)) {
        expect(exported, `${panel.title}: ${name}`).toContain(name);
        const selectors = [...expr.matchAll(new RegExp(`\\b${name}\\{([^}]*)\\}`, 'g'))];
        const uses = [...expr.matchAll(new RegExp(`\\b${name}\\b`, 'g'))];
        expect(selectors.length, `${panel.title}: every use of ${name} has a selector`).toBe(uses.length);
        for (const [, matchers] of selectors)
          expect(matchers, `${panel.title}: ${name}`).toContain('ddp_job=~"$ddp_job"');
      }
    }
  });

  it('marks the DCGM panels as needing dcgm-exporter and keeps DCGM out of every other panel', () => {
    const dcgmPanels = panels.filter(needsDcgm);
    expect(dcgmPanels.length).toBeGreaterThan(0);
    for (const q of queries) {
      const dcgm = metricNames(q.expr).some((name) => name.startsWith('DCGM_'));
      expect(dcgm, `${q.panel.title}: ${q.expr}`).toBe(needsDcgm(q.panel));
    }
  });

  it.skipIf(!hasCommand('promtool'))('has only queries that promtool parses as PromQL', () => {
    const broken = promtoolRules(['sum(rate(ddp_samples_total[5m])']);
    expect(broken.status, 'promtool rejects an unbalanced parenthesis').not.toBe(0);
    const checked = promtoolRules(queries.map((q) => expand(q.expr)));
    expect(checked.status, checked.output).toBe(0);
  });

  it.skipIf(!hasCommand('prometheus'))(
    'returns data for every query from a real Prometheus scraping the coordinator and two workers',
    async () => {
      const workers = [0, 1].map(workerMetrics);
      const coordinator = createCoordinatorMetrics({ job: JOB, processMetrics: false });
      workers.forEach((w, rank) => w.joined({ generation: 1, rank, worldSize: 2 }));
      coordinator.generation({ generation: 1, worldSize: 2, restart: false });
      coordinator.epoch(1);
      let step = 0;
      const train = setInterval(() => {
        step++;
        const timings = { data: 0.01, compute: 0.05, readback: 0.01, allreduce: 0.02, apply: 0.01, wait: 0.005 };
        for (const w of workers) w.step({ timings, samples: 32, lossSum: 32 / step, gradientBytes: 1e6, worldSize: 2 });
        coordinator.step({ seconds: 0.1, samples: 64, loss: 1 / step });
        coordinator.validation({ loss: 1 / step, accuracy: 0.9 });
        coordinator.eta(100 - step);
        for (const w of workers.keys()) coordinator.straggler(`worker-${w}`, w === 1 && step > 5);
      }, 100);

      const servers: MetricsServer[] = [];
      const dir = mkdtempSync(join(tmpdir(), 'dashboard-prometheus-'));
      let prometheus: ReturnType<typeof spawn> | undefined;
      // If the test process is torn down before `finally` runs, Prometheus must not outlive it.
      const killPrometheus = () => prometheus?.kill('SIGKILL');
      process.once('exit', killPrometheus);
      try {
        for (const registry of [coordinator.registry, ...workers.map((w) => w.registry)]) {
          servers.push(await startMetricsServer('127.0.0.1:0', { registry, ready: () => true }));
        }
        const port = await freePort();
        const targets = servers.map((s) => `'${s.address}'`).join(', ');
        writeFileSync(
          join(dir, 'prometheus.yml'),
          `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: tfjs-ddp\n    static_configs: [{ targets: [${targets}] }]\n`,
        );
        let log = '';
        prometheus = spawn(
          'prometheus',
          [
            `--config.file=${join(dir, 'prometheus.yml')}`,
            `--storage.tsdb.path=${join(dir, 'data')}`,
            `--web.listen-address=127.0.0.1:${port}`,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        prometheus.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));

        const api = `http://127.0.0.1:${port}/api/v1`;
        /** How many series the query returns; throws when Prometheus does not answer it. */
        const seriesFor = async (expr: string, job = JOB): Promise<number> => {
          const query = expand(expr, job);
          const res = await fetch(`${api}/query?query=${encodeURIComponent(query)}`);
          if (!res.ok)
            throw new Error(`expected Prometheus to answer ${query}, got HTTP ${res.status}: ${await res.text()}`);
          return ((await res.json()) as { data: { result: unknown[] } }).data.result.length;
        };
        // Rates need two scrapes in the window, and Prometheus takes a moment to start: poll until
        // every query answers with data, for 60 rounds at most.
        let empty = ownQueries;
        for (let round = 0; round < 60 && empty.length > 0; round++) {
          await new Promise((r) => setTimeout(r, 500));
          const counts = await Promise.all(empty.map((q) => seriesFor(q.expr).catch(() => 0)));
          empty = empty.filter((_, i) => counts[i] === 0);
        }
        expect(
          empty.map((q) => `${q.panel.title}: ${q.expr}`),
          `Prometheus log:\n${log}`,
        ).toEqual([]);
        expect(await seriesFor(ownQueries[0].expr, 'another-job'), 'another job shows nothing').toBe(0);
      } finally {
        clearInterval(train);
        if (prometheus && prometheus.exitCode === null) {
          const exited = new Promise((r) => prometheus!.once('exit', r));
          prometheus.kill('SIGTERM');
          const stuck = setTimeout(() => prometheus?.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(stuck);
        }
        process.off('exit', killPrometheus);
        await Promise.all(servers.map((s) => s.close()));
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
