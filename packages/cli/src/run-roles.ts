// `tfjs-ddp coordinator`, `tfjs-ddp worker` and `tfjs-ddp data put`: each role in this process,
// configured from flags (or their environment variables, for Kubernetes).
import { basename } from 'node:path';
import {
  connectNats,
  createLogger,
  loadJobSpec,
  putDataset,
  specHash,
  type BackendRequest,
  type Logger,
} from '@tfjs-ddp/common';
import { Coordinator, JobAnnotator, inClusterAnnotatorOptions, type ProgressEvent } from '@tfjs-ddp/coordinator';
import { runWorker } from '@tfjs-ddp/worker';
import type { CliContext } from './commands/context.js';
import { natsOptionsFromFlags, type NatsFlagValues } from './commands/nats-flags.js';

export interface CoordinatorArgs extends NatsFlagValues {
  job: string;
  'status-addr'?: string;
  trace?: string;
  'min-workers'?: number;
  'max-workers'?: number;
  'k8s-job'?: string;
  'k8s-namespace'?: string;
}

export async function runCoordinatorCommand(ctx: CliContext, args: CoordinatorArgs): Promise<number> {
  const log = createLogger('coordinator');
  try {
    const loaded = await loadJobSpec(args.job);
    const min = args['min-workers'] ?? loaded.workers.min;
    const max = args['max-workers'] ?? Math.max(loaded.workers.max, min);
    if (max < min) throw new Error(`--max-workers ${max} is below the minimum ${min}`);
    const spec = { ...loaded, workers: { min, max } };
    const annotator = jobAnnotator(ctx, args, log);
    const coordinator = new Coordinator({
      spec,
      specHash: specHash(spec),
      nats: natsOptionsFromFlags(args),
      statusAddr: args['status-addr'],
      trace: args.trace,
      log,
    });
    let last: ProgressEvent | undefined;
    coordinator.on('progress', (p: ProgressEvent) => {
      last = p;
      annotator?.progress(p);
    });
    const summary = await coordinator.run().catch(async (err: unknown) => {
      await annotator?.close('failed', last);
      throw err;
    });
    await annotator?.close('completed', last);
    ctx.stdout(`${JSON.stringify(summary.test ?? {}, null, 0)}\n`);
    return 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp coordinator: ${(err as Error).message}\n`);
    return 1;
  }
}

/** With --k8s-job, progress goes to that Job's annotations too, through the in-cluster API. */
function jobAnnotator(ctx: CliContext, args: CoordinatorArgs, log: Logger): JobAnnotator | undefined {
  const job = args['k8s-job'];
  if (!job) return undefined;
  const namespace = args['k8s-namespace'];
  if (!namespace)
    throw new Error(
      `--k8s-job ${job} needs --k8s-namespace (TFJS_DDP_K8S_NAMESPACE; in a pod from the downward API's metadata.namespace)`,
    );
  return new JobAnnotator(inClusterAnnotatorOptions(ctx.env, job, namespace, log.child('k8s')));
}

export interface WorkerArgs extends NatsFlagValues {
  job: string;
  backend: BackendRequest;
  'worker-id'?: string;
  'metrics-addr'?: string;
}

export async function runWorkerCommand(ctx: CliContext, args: WorkerArgs): Promise<number> {
  const log = createLogger(`worker ${args['worker-id'] ?? process.pid}`);
  try {
    const spec = await loadJobSpec(args.job);
    const result = await runWorker({
      spec,
      specHash: specHash(spec),
      nats: natsOptionsFromFlags(args),
      backend: args.backend,
      workerId: args['worker-id'],
      metricsAddr: args['metrics-addr'],
      log,
    });
    return result.failed ? 1 : 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp worker: ${(err as Error).message}\n`);
    return 1;
  }
}

export interface DataPutArgs extends NatsFlagValues {
  file: string;
  bucket: string;
  name?: string;
}

export async function runDataPut(ctx: CliContext, args: DataPutArgs): Promise<number> {
  let nc;
  try {
    nc = await connectNats(natsOptionsFromFlags(args));
    let last = 0;
    const result = await putDataset(nc, args.bucket, args.name ?? basename(args.file), args.file, {
      onProgress: (sent, total) => {
        if (Date.now() - last < 500 && sent < total) return;
        last = Date.now();
        ctx.stderr(`uploaded ${(sent / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB\n`);
      },
    });
    ctx.stdout(`${result.url} ${result.size} bytes sha256 ${result.sha256}\n`);
    return 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp data put: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc?.close();
  }
}
