#!/usr/bin/env node
// The worker process the local launcher and Kubernetes start: `tfjs-ddp-worker --job FILE --nats URL`.
// Every flag can also come from the environment (TFJS_DDP_JOB, TFJS_DDP_NATS_URL, ...).
import { parseArgs } from 'node:util';
import { createLogger, loadJobSpec, natsOptionsFromEnv, specHash } from '@tfjs-ddp/common';
import { runWorker } from './worker.js';

const USAGE = `usage: tfjs-ddp-worker --job FILE [--nats URL] [--backend auto|tensorflow|webgpu|wasm|cpu] [--worker-id ID]
       [--metrics-addr HOST:PORT]
  --job FILE        the job spec (also TFJS_DDP_JOB); must be the coordinator's
  --nats URL        NATS server(s), comma-separated: the all-reduce is spread over every one listed
                    (also TFJS_DDP_NATS_URL; default nats://127.0.0.1:4222)
  --backend NAME    compute backend (also TFJS_DDP_BACKEND; default auto)
  --worker-id ID    stable id across restarts, e.g. the pod name (also TFJS_DDP_WORKER_ID; default host-pid-random)
  --metrics-addr HOST:PORT
                    serve /metrics, /healthz and /readyz there; port 0 picks a free one (also TFJS_DDP_METRICS_ADDR)
NATS auth and TLS come from TFJS_DDP_NATS_USER, _PASSWORD, _TOKEN, _CREDS_FILE, _NKEY_FILE, _TLS_CA, _TLS_CERT, _TLS_KEY.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        job: { type: 'string' },
        nats: { type: 'string' },
        backend: { type: 'string' },
        'worker-id': { type: 'string' },
        'metrics-addr': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const env = process.env;
  const job = values.job ?? env.TFJS_DDP_JOB;
  if (!job) {
    process.stderr.write(`missing --job FILE (or TFJS_DDP_JOB)\n${USAGE}\n`);
    return 2;
  }
  const workerId = values['worker-id'] ?? env.TFJS_DDP_WORKER_ID;
  const log = createLogger(`worker ${workerId ?? process.pid}`);
  try {
    const spec = await loadJobSpec(job);
    const nats = natsOptionsFromEnv();
    const url = values.nats ?? env.TFJS_DDP_NATS_URL;
    if (url) nats.servers = url.split(',').map((s) => s.trim());
    const result = await runWorker({
      spec,
      specHash: specHash(spec),
      nats,
      backend: values.backend ?? env.TFJS_DDP_BACKEND ?? 'auto',
      workerId,
      log,
      metricsAddr: values['metrics-addr'] ?? env.TFJS_DDP_METRICS_ADDR,
    });
    return result.failed ? 1 : 0;
  } catch (err) {
    log.error((err as Error).message);
    return 1;
  }
}

// Started by a local cluster, the worker has an IPC channel to it: when that process dies (a crashed
// test run, a killed launcher), the channel closes and the worker goes too instead of lingering.
if (process.channel) {
  process.channel.unref();
  process.on('disconnect', () => process.exit(1));
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
