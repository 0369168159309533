// DESIGN §7: the Grafana dashboard's queries all return data against a real Prometheus that
// scraped a real local run. A local cluster trains a job with a validation split; a Prometheus
// (the Debian package: apt-get install -y prometheus) scrapes the coordinator and every worker
// every 500 ms; then every PromQL expression of deploy/grafana/dashboards/tfjs-ddp.json runs over
// the time of the run and must return at least one series. `promtool check metrics` must accept
// what the coordinator's and a worker's /metrics serve.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster } from 'tfjs-ddp';
import { freePort } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

const DASHBOARD = 'deploy/grafana/dashboards/tfjs-ddp.json';
const SCRAPE = '500ms';
/** Grafana's $__rate_interval: at least four scrape intervals, so rate() always has two samples. */
const RATE_INTERVAL = '2s';
const JOB = 'prom-scrape';

interface Panel {
  title?: string;
  description?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function installed(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Every (panel title, expr) of the dashboard, without the panels that need dcgm-exporter (GPU metrics). */
function dashboardQueries(dashboard: { panels: Panel[] }): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  const visit = (panels: Panel[]) => {
    for (const p of panels) {
      visit(p.panels ?? []);
      const exprs = (p.targets ?? []).map((t) => t.expr).filter((e): e is string => !!e);
      const needsDcgm = /dcgm/i.test(`${p.title} ${p.description}`) || exprs.some((e) => /DCGM_/.test(e));
      if (!needsDcgm) for (const expr of exprs) out.push({ panel: p.title ?? '(untitled)', expr });
    }
  };
  visit(dashboard.panels);
  return out;
}

/** The expression as Grafana sends it: its variables replaced by this run's values. */
function substitute(expr: string, rangeSeconds: number): string {
  const vars: Record<string, string> = {
    ddp_job: JOB,
    __rate_interval: RATE_INTERVAL,
    __interval: SCRAPE,
    __range: `${Math.ceil(rangeSeconds)}s`,
  };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced: string, bare: string) => {
    const name = braced ?? bare;
    if (!(name in vars)) throw new Error(`the dashboard uses $${name}; give this test a value for it`);
    return vars[name];
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('Prometheus and Grafana against a real local run', () => {
  it('has prometheus and promtool installed (apt-get install -y prometheus)', () => {
    expect(installed('prometheus')).toBe(true);
    expect(installed('promtool')).toBe(true);
  });

  let nats: NatsFixture;
  let dir: TempDir;
  let cluster: LocalCluster | undefined;
  let prometheus: ChildProcess | undefined;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('prometheus');
  });
  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await cluster?.stop();
    await nats?.stop();
    await dir?.remove();
  });

  it('answers every dashboard query with data, and serves /metrics that promtool accepts', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] };
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(10);

    const job = await writeJob(dir.path, JOB, {
      name: JOB,
      model: { zoo: 'binary-mlp' },
      data: { train: { type: 'synthetic-binary', n: 4000, seed: 4 }, validation: { fraction: 0.2 } },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      metrics: ['accuracy'],
      batchSize: 32,
      epochs: 8,
      workers: { min: 1, max: 2 },
    });
    const statusAddr = `127.0.0.1:${await freePort()}`;
    const started = await startLocalCluster({
      job,
      workers: 2,
      nats: nats.url,
      output: join(dir.path, 'out'),
      statusAddr,
      onWorkerOutput: () => {},
    });
    cluster = started;
    // Scraped once training runs, so the histograms and gauges hold real values.
    const scraped = new Promise<string[]>((resolve, reject) =>
      started.events.on('progress', (p) => {
        if (p.globalStep !== 20) return;
        Promise.all(
          [`http://${statusAddr}/metrics`, ...started.metricsUrls()].map(async (u) => (await fetch(u)).text()),
        ).then(resolve, reject);
      }),
    );
    const workerUrls = await waitFor('both workers to serve /metrics', () => {
      const urls = started.metricsUrls();
      return urls.length === 2 ? urls : undefined;
    });

    const port = await freePort();
    const data = join(dir.path, 'prometheus');
    await mkdir(data, { recursive: true });
    const config = join(dir.path, 'prometheus.yml');
    const target = (u: string) => new URL(u).host;
    await writeFile(
      config,
      [
        'global:',
        `  scrape_interval: ${SCRAPE}`,
        `  scrape_timeout: 400ms`,
        'scrape_configs:',
        '  - job_name: tfjs-ddp-coordinator',
        '    static_configs:',
        `      - targets: ['${statusAddr}']`,
        '  - job_name: tfjs-ddp-workers',
        '    static_configs:',
        `      - targets: [${workerUrls.map((u) => `'${target(u)}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const promStart = Date.now() / 1000;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${data}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let promLog = '';
    prometheus.stderr?.on('data', (b: Buffer) => (promLog += b.toString()));
    const api = `http://127.0.0.1:${port}`;
    await waitFor(`Prometheus to be ready (its log: ${promLog})`, async () =>
      (await fetch(`${api}/-/ready`).catch(() => undefined))?.ok ? true : undefined,
    );

    const summary = await started.result();
    expect(summary.epochs).toHaveLength(8);
    const texts = await scraped;
    const end = Date.now() / 1000;

    for (const [i, text] of texts.entries()) {
      const check = promtoolCheck(text);
      expect(check.output, `promtool check metrics on ${i === 0 ? 'the coordinator' : `worker ${i - 1}`}`).toBe('');
      expect(check.status).toBe(0);
    }

    const range = async (query: string) => {
      const params = new URLSearchParams({ query, start: String(promStart), end: String(end), step: '0.5' });
      const r = (await (await fetch(`${api}/api/v1/query_range?${params}`)).json()) as {
        status: string;
        error?: string;
        data: { result: { metric: Record<string, string>; values: [number, string][] }[] };
      };
      if (r.status !== 'success') throw new Error(`Prometheus refused ${query}: ${r.error}`);
      return r.data.result;
    };

    // Every target was scraped while it was up.
    const up = await range('max_over_time(up[1m])');
    expect(
      up
        .filter((s) => s.values.some(([, v]) => v === '1'))
        .map((s) => s.metric.instance)
        .sort(),
    ).toEqual([statusAddr, ...workerUrls.map(target)].sort());

    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const result = await range(substitute(expr, end - promStart));
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty, `dashboard queries without data:\n${empty.join('\n')}\nPrometheus log:\n${promLog}`).toEqual([]);
  }, 90_000);
});
