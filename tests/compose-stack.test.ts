// deploy/compose.yaml brought up for real with Debian's docker-compose 1.29: NATS with JetStream,
// the coordinator, two workers and Prometheus, on images built here (no registry: the NATS and
// Prometheus images come from Debian packages, the tfjs-ddp image from deploy/Dockerfile), training
// a Fashion-MNIST subset to completion. The model and summary come out of the stack's output volume,
// the stack's own Prometheus has scraped every target and holds samples/s and step-time series, and
// the stack is torn down with its volumes.
//
// What the test changes in the compose file, and why: the images (the pinned public ones cannot be
// pulled); host ports 127.0.0.1:PORT become 127.0.0.1:(any free port), so the test never takes
// 4222, 8080 or 9090 from something else; the job (the Fashion subset, mounted at /job); labels on
// every container, network and volume (the run's teardown check); the top-level `name` (docker-compose
// 1.29 rejects it; the project name is given with -p); no Grafana (no image for it can be made from
// Debian packages; its dashboard's queries are run against a real Prometheus by tests/prometheus.test.ts).
// Everything else (commands, environment, read-only root, tmpfs, dropped capabilities, health
// check, depends_on, the NATS and Prometheus configs, the volumes) is the file's own.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildDeployImage,
  commandAsync,
  containerRuntime,
  CPU_IMAGE,
  dockerAsync,
  ensureBaseImage,
  leftovers,
  NATS_BASE,
  NODE_BASE,
  PROMETHEUS_BASE,
  RUN_LABEL,
  testLabels,
} from './support/containers.js';
import { fashionSubset } from './support/jobs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILD_MS = 20 * 60_000;
const JOB_MS = 6 * 60_000;

const runtime = await containerRuntime();
const hasCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
const skip = !runtime.ok
  ? runtime.reason
  : !hasCompose
    ? 'docker-compose is not installed (apt-get install -y docker-compose)'
    : undefined;
if (skip) process.stderr.write(`[compose-stack.test] skipped: ${skip}\n`);

interface Service {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  labels?: Record<string, string>;
}

/** deploy/compose.yaml with the substitutions listed at the top of this file. */
async function stackFile(images: Record<'nats' | 'prometheus' | 'tfjs', string>, jobDir: string): Promise<string> {
  const compose = YAML.parse(await readFile(join(ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as {
    name?: string;
    services: Record<string, Service>;
    volumes: Record<string, Record<string, unknown> | null>;
    networks?: Record<string, Record<string, unknown>>;
  };
  delete compose.name;
  delete compose.services.grafana;
  const labels = testLabels();
  for (const [name, service] of Object.entries(compose.services)) {
    // The merged anchors are shared objects; copy before changing one service.
    const s: Service = structuredClone(service);
    compose.services[name] = s;
    if (name === 'nats') s.image = images.nats;
    else if (name === 'prometheus') s.image = images.prometheus;
    else {
      s.image = images.tfjs;
      delete s.build;
      s.environment = { ...s.environment, TFJS_DDP_JOB: '/job/job.yaml' };
      s.volumes = [...(s.volumes ?? []), `${jobDir}:/job:ro`];
    }
    s.ports = s.ports?.map((p) => p.replace(/^127\.0\.0\.1:\d+:/, '127.0.0.1::'));
    s.labels = { ...s.labels, ...labels };
  }
  for (const v of Object.keys(compose.volumes)) compose.volumes[v] = { ...compose.volumes[v], labels };
  compose.networks = { default: { labels } };
  return YAML.stringify(compose);
}

describe.skipIf(skip !== undefined)('deploy/compose.yaml, run with docker-compose 1.29', () => {
  const project = `tfjsddp-${(process.env.TFJS_DDP_TEST_RUN_ID ?? String(process.pid)).toLowerCase()}`;
  let dir: string;
  let composeFile: string;
  const deployDir = join(ROOT, 'deploy');
  // The file's relative paths (./nats/nats.conf, ../examples) resolve against deploy/, as for the original.
  const compose = (...args: string[]) =>
    commandAsync(
      'docker-compose',
      ['-p', project, '--project-directory', deployDir, '-f', composeFile, ...args],
      5 * 60_000,
      deployDir,
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-compose-'));
    const jobDir = join(dir, 'job');
    await mkdir(jobDir);
    // Readable by the image's uid 1000.
    await chmod(dir, 0o755);
    await chmod(jobDir, 0o755);
    const inJob = (p: { images: string; labels: string }) => ({
      images: `/job/${basename(p.images)}`,
      labels: `/job/${basename(p.labels)}`,
    });
    // 10,000 samples x 6 epochs: about 20 s of training on two cores, several of the stack's 5 s scrapes.
    const train = inJob(await fashionSubset(jobDir, 'train', 10000));
    const test = inJob(await fashionSubset(jobDir, 't10k', 500));
    await writeFile(
      join(jobDir, 'job.yaml'),
      YAML.stringify({
        name: 'compose-fashion',
        model: { zoo: 'mlp' },
        data: { train: { type: 'idx', ...train }, test: { type: 'idx', ...test } },
        optimizer: { type: 'adam', learningRate: 0.002 },
        loss: 'sparseCategoricalCrossentropy',
        metrics: ['accuracy'],
        batchSize: 100,
        epochs: 6,
        seed: 3,
        workers: { min: 2, max: 2 },
      }),
    );
    for (const f of await readdir(jobDir)) await chmod(join(jobDir, f), 0o644);

    await buildDeployImage(ROOT, 'deploy/Dockerfile', CPU_IMAGE, {
      NODE_IMAGE: ensureBaseImage(NODE_BASE),
      TFJS_NODE: 'skip',
    });
    composeFile = join(dir, 'compose.yaml');
    await writeFile(
      composeFile,
      await stackFile(
        {
          nats: ensureBaseImage(NATS_BASE),
          prometheus: ensureBaseImage(PROMETHEUS_BASE),
          tfjs: CPU_IMAGE,
        },
        jobDir,
      ),
    );
  }, BUILD_MS);

  afterAll(async () => {
    if (composeFile) {
      const down = await compose('down', '--volumes', '--remove-orphans', '--timeout', '5');
      if (down.status !== 0) process.stderr.write(`[compose-stack.test] down failed: ${down.stderr}\n`);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it(
    'trains a Fashion-MNIST subset to completion; model and summary come out; Prometheus scraped every target',
    async () => {
      // Prometheus first, and ready, so that its scrapes run from the moment the targets start.
      const first = await compose('up', '-d', '--no-build', 'nats', 'prometheus');
      expect(first.status, first.stderr).toBe(0);
      const promPort = (await compose('port', 'prometheus', '9090')).stdout.trim().split(':').at(-1);
      const ready = Date.now() + 60_000;
      while (
        !(await fetch(`http://127.0.0.1:${promPort}/-/ready`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > ready) throw new Error(`the stack's Prometheus (port ${promPort}) was not ready within 60 s`);
        await sleep(500);
      }
      const up = await compose('up', '-d', '--no-build');
      expect(up.status, up.stderr).toBe(0);
      const coordinator = (await compose('ps', '-q', 'coordinator')).stdout.trim();
      expect(coordinator).not.toBe('');

      // The coordinator exits when the job is done.
      const deadline = Date.now() + JOB_MS;
      let state = '';
      while (Date.now() < deadline) {
        state = (
          await dockerAsync(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', coordinator])
        ).stdout.trim();
        if (state.startsWith('exited')) break;
        await sleep(1000);
      }
      const logs = await compose('logs', '--no-color', 'coordinator', 'worker-1', 'worker-2');
      expect(state, `coordinator did not finish: ${logs.stdout.slice(-4000)}`).toBe('exited 0');

      const out = join(dir, 'out');
      const cp = await dockerAsync(['cp', `${coordinator}:/output/runs`, out]);
      expect(cp.status, cp.stderr).toBe(0);
      const run = join(out, 'compose-fashion');
      const files = await readdir(run);
      expect(files).toEqual(expect.arrayContaining(['summary.json', 'model']));
      expect(await readdir(join(run, 'model'))).toEqual(expect.arrayContaining(['model.json']));
      const summary = JSON.parse(await readFile(join(run, 'summary.json'), 'utf8')) as {
        epochs: unknown[];
        test?: { accuracy: number };
      };
      expect(summary.epochs).toHaveLength(6);
      // An undisturbed 2-worker run of this job reaches 0.86.
      expect(summary.test?.accuracy).toBeGreaterThan(0.8);

      const query = async (q: string) => {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as {
          data: { result: { metric: Record<string, string>; value?: [number, string]; values?: unknown[] }[] };
        };
        return body.data.result;
      };
      const ups = await query('max by (instance) (max_over_time(up[15m]))');
      // By instance: a worker that rejoined or restarted (restart: on-failure) has further series.
      const upByInstance = Object.fromEntries(ups.map((r) => [r.metric.instance, r.value?.[1]]));
      expect(upByInstance).toEqual({ 'coordinator:8080': '1', 'worker-1:9100': '1', 'worker-2:9100': '1' });
      const samplesPerSecond = await query('max by (instance) (max_over_time(rate(ddp_samples_total[15s])[15m:5s]))');
      expect(samplesPerSecond.map((r) => r.metric.instance).sort()).toEqual(['worker-1:9100', 'worker-2:9100']);
      for (const r of samplesPerSecond) expect(Number(r.value?.[1])).toBeGreaterThan(0);
      const stepTime = await query(
        'max by (instance) (max_over_time(ddp_step_phase_seconds_count{phase="compute"}[15m]))',
      );
      expect(stepTime.map((r) => r.metric.instance).sort()).toEqual(['worker-1:9100', 'worker-2:9100']);
    },
    JOB_MS + 60_000,
  );

  it('is torn down with its volumes: nothing labelled with this run is left', async () => {
    const down = await compose('down', '--volumes', '--remove-orphans', '--timeout', '5');
    expect(down.status, down.stderr).toBe(0);
    const runId = testLabels()[RUN_LABEL];
    expect(leftovers(runId).filter((l) => l.includes(project))).toEqual([]);
  }, 120_000);
});
