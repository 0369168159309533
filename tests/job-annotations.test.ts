// Progress where Kubernetes shows it: the coordinator's JobAnnotator against a small HTTP server
// standing in for the API server. It sends a JSON merge patch of the Job's annotations to
// /apis/batch/v1/namespaces/NS/jobs/NAME with the service-account token, at most every
// minIntervalMs (the newest progress wins), a final state at close, and a failing API server costs
// one warning, never the job.
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JOB_ANNOTATIONS, JobAnnotator, inClusterAnnotatorOptions, type ProgressEvent } from '@tfjs-ddp/coordinator';
import { runCli } from 'tfjs-ddp';
import { captureLog } from './support/log.js';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: { metadata: { annotations: Record<string, string> } };
  at: number;
}

function progress(step: number, etaSec = 90): ProgressEvent {
  return {
    epoch: 1,
    epochs: 3,
    step,
    stepsPerEpoch: 50,
    globalStep: 50 + step,
    loss: 0.25,
    samplesPerSec: 1000,
    etaSec,
    worldSize: 2,
    generation: 1,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the Job annotator', () => {
  let server: Server;
  let url: string;
  let dir: TempDir;
  let tokenFile: string;
  let received: Received[] = [];
  let status = 200;

  beforeAll(async () => {
    dir = await tempDir('annotations');
    tokenFile = join(dir.path, 'token');
    await writeFile(tokenFile, 'the-token\n');
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: JSON.parse(body) as Received['body'],
          at: performance.now(),
        });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(
          status === 200
            ? '{}'
            : JSON.stringify({ kind: 'Status', message: 'jobs.batch "c" is forbidden: User cannot patch resource' }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address() as { port: number };
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await dir?.remove();
  });
  beforeEach(() => {
    received = [];
    status = 200;
  });

  const annotator = (minIntervalMs: number, log = captureLog().log) =>
    new JobAnnotator({
      apiServer: url,
      namespace: 'tfjs-ddp',
      job: 'tfjs-ddp-coordinator',
      tokenFile,
      minIntervalMs,
      log,
    });

  it('merge-patches the annotations of its own Job with the bearer token', async () => {
    const a = annotator(10_000);
    a.progress(progress(7));
    await a.close('completed', progress(50, 0));
    expect(received).toHaveLength(2);
    const [first, last] = received;
    expect(first.method).toBe('PATCH');
    expect(first.url).toBe('/apis/batch/v1/namespaces/tfjs-ddp/jobs/tfjs-ddp-coordinator');
    expect(first.headers['content-type']).toBe('application/merge-patch+json');
    expect(first.headers.authorization).toBe('Bearer the-token');
    expect(Object.keys(first.body)).toEqual(['metadata']);
    expect(Object.keys(first.body.metadata)).toEqual(['annotations']);
    expect(first.body.metadata.annotations).toMatchObject({
      [JOB_ANNOTATIONS.state]: 'training',
      [JOB_ANNOTATIONS.epoch]: '2/3',
      [JOB_ANNOTATIONS.step]: '7/50',
      [JOB_ANNOTATIONS.eta]: '1m30s',
      [JOB_ANNOTATIONS.etaSeconds]: '90',
    });
    expect(last.body.metadata.annotations).toMatchObject({
      [JOB_ANNOTATIONS.state]: 'completed',
      [JOB_ANNOTATIONS.step]: '50/50',
      [JOB_ANNOTATIONS.eta]: '0s',
    });
  });

  it('writes at most once per interval, and the newest progress when the interval has passed', async () => {
    const intervalMs = 300;
    const a = annotator(intervalMs);
    for (let step = 1; step <= 20; step++) {
      a.progress(progress(step));
      await sleep(10);
    }
    // 20 progress events in about 200 ms: the first is written at once, the newest once 300 ms have passed.
    await sleep(intervalMs + 200);
    expect(received.map((r) => r.body.metadata.annotations[JOB_ANNOTATIONS.step])).toEqual(['1/50', '20/50']);
    expect(received[1].at - received[0].at).toBeGreaterThanOrEqual(intervalMs - 20);
    await a.close('completed');
    expect(received).toHaveLength(3);
  });

  it('warns once, naming the Job and what to check, when the API server refuses, and never throws', async () => {
    status = 403;
    const log = captureLog();
    const a = annotator(0, log.log);
    for (let step = 1; step <= 3; step++) {
      a.progress(progress(step));
      await sleep(30);
    }
    await expect(a.close('failed')).resolves.toBeUndefined();
    expect(received.length).toBeGreaterThanOrEqual(3);
    const warnings = log.lines.filter((l) => l.startsWith('WARN'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not write the progress to Job tfjs-ddp\/tfjs-ddp-coordinator/);
    expect(warnings[0]).toMatch(/answered 403: jobs\.batch "c" is forbidden/);
    expect(warnings[0]).toMatch(/Role tfjs-ddp-coordinator-progress allows patch/);
  });

  it('warns once too when the token cannot be read, and never throws', async () => {
    const log = captureLog();
    const a = new JobAnnotator({
      apiServer: 'http://127.0.0.1:1',
      namespace: 'n',
      job: 'j',
      tokenFile: join(dir.path, 'missing'),
      minIntervalMs: 0,
      log: log.log,
    });
    a.progress(progress(1));
    await sleep(30);
    await a.close('completed');
    const warnings = log.lines.filter((l) => l.startsWith('WARN'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ENOENT/);
  });

  it('finds the API server in a pod from the variables Kubernetes sets, and the projected credentials', () => {
    const o = inClusterAnnotatorOptions(
      { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      'tfjs-ddp-coordinator',
      'tfjs-ddp',
      captureLog().log,
    );
    expect(o.apiServer).toBe('https://10.96.0.1:443');
    expect(o.tokenFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
    expect(o.caFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
  });
});

const OPENSSL = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!OPENSSL)('the Job annotator over HTTPS', () => {
  let dir: TempDir;
  let server: ReturnType<typeof createHttpsServer>;
  let url: string;
  const paths: string[] = [];

  beforeAll(async () => {
    dir = await tempDir('annotations-tls');
    const r = spawnSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
        ...['-keyout', join(dir.path, 'key.pem'), '-out', join(dir.path, 'ca.crt'), '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    await writeFile(join(dir.path, 'token'), 'tls-token');
    server = createHttpsServer(
      { key: await readFile(join(dir.path, 'key.pem')), cert: await readFile(join(dir.path, 'ca.crt')) },
      (req, res) => {
        req.resume();
        req.on('end', () => {
          paths.push(`${req.method} ${req.url} ${req.headers.authorization}`);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await dir?.remove();
  });

  it('checks the API server against the cluster CA it is given, and refuses one it cannot verify', async () => {
    const options = { apiServer: url, namespace: 'ns', job: 'j', tokenFile: join(dir.path, 'token'), minIntervalMs: 0 };
    const trusting = captureLog();
    await new JobAnnotator({ ...options, caFile: join(dir.path, 'ca.crt'), log: trusting.log }).close('completed');
    expect(paths).toEqual(['PATCH /apis/batch/v1/namespaces/ns/jobs/j Bearer tls-token']);
    expect(trusting.lines.filter((l) => l.startsWith('WARN'))).toEqual([]);

    const without = captureLog();
    await new JobAnnotator({ ...options, log: without.log }).close('completed');
    expect(paths).toHaveLength(1);
    expect(without.lines.filter((l) => l.startsWith('WARN'))).toEqual([
      expect.stringMatching(/self-signed certificate/),
    ]);
  });
});

describe('tfjs-ddp coordinator --k8s-job', () => {
  it('needs the namespace too, and says where it comes from in a pod', async () => {
    const dir = await tempDir('k8s-flags');
    try {
      const job = await writeJob(dir.path, 'k', {
        name: 'k',
        model: { zoo: 'linear' },
        data: { train: { type: 'synthetic-linear', n: 10, w: [1], seed: 1 } },
        optimizer: { type: 'sgd', learningRate: 0.1 },
        loss: 'mse',
        batchSize: 5,
        epochs: 1,
      });
      let stderr = '';
      const code = await runCli(['coordinator', '--job', job, '--k8s-job', 'tfjs-ddp-coordinator'], {
        env: {},
        stdout: () => {},
        stderr: (t) => (stderr += t),
      });
      expect(code).toBe(1);
      expect(stderr).toBe(
        "tfjs-ddp coordinator: --k8s-job tfjs-ddp-coordinator needs --k8s-namespace (TFJS_DDP_K8S_NAMESPACE; in a pod from the downward API's metadata.namespace)\n",
      );
    } finally {
      await dir.remove();
    }
  });
});
