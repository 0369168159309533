// The whole cluster on one machine: a nats-server (unless one is given), the coordinator in this
// process and N worker processes. `tfjs-ddp local` and users' integration tests both use it.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import {
  authorizationBlock,
  bundleInfo,
  createLogger,
  generateRoleUsers,
  loadJobSpec,
  natsOptionsToEnv,
  specHash,
  startNatsServer,
  type BackendRequest,
  type GeneratedRoleUsers,
  type JobSpec,
  type MessageObserver,
  type Logger,
  type MetricsRegistry,
  type NatsOptions,
  type NatsServerHandle,
} from '@tfjs-ddp/common';
import { Coordinator, type EpochSummary, type JobSummary, type ProgressEvent } from '@tfjs-ddp/coordinator';

export interface LocalClusterOptions {
  /** Path of the job file (YAML or JSON). */
  job: string;
  workers: number;
  /**
   * URL of a running NATS server, or the comma-separated URLs of a cluster's servers (the workers
   * spread the all-reduce over them); omitted: a nats-server is started on a free port.
   */
  nats?: string;
  /** Credentials and TLS for that server, passed to the coordinator and, as environment variables, to the workers. */
  natsOptions?: NatsOptions;
  /**
   * Start the nats-server with role users (nats-roles.ts): the coordinator alone may publish
   * commands, and each worker has its own user, named after its worker id, that may publish only
   * registration, heartbeats, reports and data-plane chunks under its own id. Each process gets
   * only its own credential. Not with `nats`: configure that server's authorization instead.
   */
  secure?: boolean;
  backend?: BackendRequest;
  /** Overrides the job's output directory. */
  output?: string;
  /** HOST:PORT for the coordinator's /status and /metrics; omitted: none. */
  statusAddr?: string;
  /** Write a Chrome trace of every rank's step phases to this file. */
  trace?: string;
  /** Receives every line the workers print (default: stderr, prefixed with the worker's name). */
  onWorkerOutput?: (worker: string, line: string) => void;
  log?: Logger;
  /** Counts the messages the coordinator drops as invalid. */
  observer?: MessageObserver;
}

export interface LocalCluster {
  /** Progress after every step, an epoch summary after every epoch, 'worker-exit' when a worker process ends. */
  readonly events: EventEmitter<{
    progress: [ProgressEvent];
    epoch: [EpochSummary];
    'worker-exit': [{ worker: string; code: number | null; signal: NodeJS.Signals | null }];
  }>;
  readonly natsUrl: string;
  /** With `secure`: the role users (random passwords) the nats-server was started with. */
  readonly natsUsers: GeneratedRoleUsers | undefined;
  readonly spec: JobSpec;
  /** The coordinator's Prometheus metrics, readable without HTTP. */
  readonly metrics: MetricsRegistry;
  /** The coordinator's bound status address (HOST:PORT, serving /status and /metrics) once it listens. */
  statusAddress(): string | undefined;
  /** The /metrics URLs of the worker processes serving them so far (each picks a free port), in worker order. */
  metricsUrls(): string[];
  /** Resolves with the job summary, rejects when the job failed. */
  result(): Promise<JobSummary>;
  /**
   * Sends `signal` (default SIGKILL; SIGSTOP freezes it) to the worker process holding `rank` now;
   * returns its worker id.
   */
  killWorker(rank: number, signal?: NodeJS.Signals): string;
  /** Sends `signal` to the worker process started with this worker id (SIGCONT to thaw a frozen one). */
  signalWorker(workerId: string, signal: NodeJS.Signals): void;
  /** Starts one more worker process, which joins at the next step boundary; returns its worker id. */
  addWorker(): string;
  /** Stops every process it started (idempotent). */
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** The most per-worker users a secure local cluster creates. */
const MAX_SECURE_WORKERS = 256;

/**
 * The worker's bin: TFJS_DDP_WORKER_BIN when set, the bundle's worker entry when running as a bundle,
 * else resolved from the installed @tfjs-ddp/worker package.
 */
export function workerBinPath(): string {
  const given = process.env.TFJS_DDP_WORKER_BIN ?? bundleInfo().workerBin;
  if (given) return given;
  return resolve(require.resolve('@tfjs-ddp/worker/package.json'), '..', 'dist', 'bin.js');
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  if (!Number.isInteger(options.workers) || options.workers < 1) {
    throw new Error(`--workers must be a whole number >= 1, got ${options.workers}`);
  }
  const log = options.log ?? createLogger('local');
  const jobPath = resolve(options.job);
  const loaded = await loadJobSpec(jobPath);
  const spec: JobSpec = { ...loaded, output: options.output ? resolve(options.output) : loaded.output };
  if (options.workers < loaded.workers.min) {
    throw new Error(
      `the job needs workers.min = ${loaded.workers.min} workers but --workers is ${options.workers}; start more or lower workers.min in ${options.job}`,
    );
  }
  if (options.workers > loaded.workers.max) {
    throw new Error(
      `the job admits workers.max = ${loaded.workers.max} workers but --workers is ${options.workers}; start fewer or raise workers.max in ${options.job}`,
    );
  }

  if (options.secure && options.nats) {
    throw new Error(
      '--secure configures the nats-server that `tfjs-ddp local` starts, so it cannot be combined with --nats; ' +
        "give that server role users instead (README, Security) and pass this process's credential with --nats-user/--nats-password",
    );
  }
  // One user per worker id the cluster may start (workers.max of them, for workers added later).
  const workerIds = (n: number) => [...Array(n).keys()].map((i) => `local-${i}`);
  const natsUsers = options.secure
    ? generateRoleUsers(workerIds(Math.min(Math.max(options.workers, loaded.workers.max), MAX_SECURE_WORKERS)))
    : undefined;
  let server: NatsServerHandle | undefined;
  const natsUrl =
    options.nats ??
    (server = await startNatsServer({
      jetstream: true,
      authorization: natsUsers && authorizationBlock(natsUsers.all),
    })).url;
  if (server) log.info('started nats-server', { url: natsUrl, roles: natsUsers ? 'per-worker users' : 'none' });
  const servers = natsUrl.split(',').map((s) => s.trim());

  const events: LocalCluster['events'] = new EventEmitter();
  const children = new Map<string, ChildProcess>();
  let stopping = false;
  const coordinator = new Coordinator({
    spec,
    specHash: specHash(spec),
    // Gang start on every worker launched here: training waits until all of them have joined.
    gangSize: options.workers,
    observer: options.observer,
    nats: {
      ...options.natsOptions,
      ...(natsUsers && { user: natsUsers.coordinator.user, pass: natsUsers.coordinator.password }),
      servers,
    },
    statusAddr: options.statusAddr,
    trace: options.trace ? resolve(options.trace) : undefined,
    log: log.child('coordinator'),
  });
  coordinator.on('progress', (p: ProgressEvent) => events.emit('progress', p));
  coordinator.on('epoch', (e: EpochSummary) => events.emit('epoch', e));

  const output = options.onWorkerOutput ?? ((w: string, line: string) => process.stderr.write(`[${w}] ${line}\n`));
  const bin = workerBinPath();
  let training = false;
  coordinator.once('generation', () => (training = true));
  const live = () => [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null).length;
  const metricsUrls = new Map<number, string>();
  const spawnWorker = (i: number): string => {
    const name = `worker-${i}`;
    const own = natsUsers && natsUsers.workers[i];
    if (natsUsers && !own) {
      throw new Error(
        `cannot start local-${i}: the secure nats-server has users for ${natsUsers.workers.length} workers ` +
          `(workers.max, at most ${MAX_SECURE_WORKERS}); start the cluster with more --workers or a larger workers.max`,
      );
    }
    const credential = own && { user: own.user, pass: own.password };
    const child = spawn(
      process.execPath,
      [
        bin,
        ...['--job', jobPath, '--nats', natsUrl, '--worker-id', `local-${i}`, '--backend', options.backend ?? 'auto'],
        ...['--metrics-addr', '127.0.0.1:0'],
      ],
      {
        // The IPC channel ties the worker's life to this process: see the worker bin.
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        // The worker bin reads NATS credentials from the environment, so they never show in `ps`.
        env: { ...process.env, ...natsOptionsToEnv({ ...options.natsOptions, ...credential, servers }) },
      },
    );
    children.set(`local-${i}`, child);
    const recent: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream?.on('data', (b: Buffer) => {
        buf += b.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          // The worker logs the address it bound; that is how a free port becomes a known URL.
          const url = /metrics endpoint url="(http:[^"]+)"/.exec(line)?.[1];
          if (url) metricsUrls.set(i, url);
          output(name, line);
          recent.push(line);
          if (recent.length > 20) recent.shift();
          buf = buf.slice(nl + 1);
        }
      });
    }
    child.once('exit', (code, signal) => {
      events.emit('worker-exit', { worker: name, code, signal });
      // Once training runs, the coordinator recovers from a lost worker by itself; a worker that fails
      // while starting (bad data, bad model), or the last one gone, ends the job here, with its reason.
      if (stopping || code === 0 || (training && live() > 0)) return;
      const why = [...recent].reverse().find((l) => / ERROR /.test(l) || /Error:/.test(l));
      coordinator.abort(
        `${name} exited ${signal ? `on ${signal}` : `with code ${code}`} before the job finished` +
          (why ? `: ${why.replace(/^\S+ ERROR\s+\[[^\]]*\] /, '')}` : '; see its output above'),
      );
    });
    return `local-${i}`;
  };
  for (let i = 0; i < options.workers; i++) spawnWorker(i);

  const killAll = async () => {
    const exits = [...children.values()]
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map(
        (c) =>
          new Promise<void>((res) => {
            const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
            c.once('exit', () => {
              clearTimeout(t);
              res();
            });
            c.kill('SIGTERM');
          }),
      );
    await Promise.all(exits);
  };

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      coordinator.abort('the local cluster was stopped');
      await settled.catch(() => {});
      await killAll();
      await server?.stop();
    })());

  const settled = coordinator.run();
  const result = settled.then(
    async (summary) => {
      stopping = true;
      await waitForExit([...children.values()], 10_000);
      await killAll();
      await server?.stop();
      return summary;
    },
    async (err: unknown) => {
      await stop();
      throw err;
    },
  );
  result.catch(() => {});

  return {
    events,
    natsUrl,
    natsUsers,
    spec,
    metrics: coordinator.metrics,
    statusAddress: () => coordinator.statusAddress,
    metricsUrls: () => [...metricsUrls].sort((a, b) => a[0] - b[0]).map(([, url]) => url),
    result: () => result,
    killWorker(rank: number, signal: NodeJS.Signals = 'SIGKILL') {
      const id = coordinator.memberAt(rank);
      const child = id ? children.get(id) : undefined;
      if (!id || !child)
        throw new Error(`no worker holds rank ${rank}; the current world has ${coordinator.worldSize} ranks`);
      child.kill(signal);
      return id;
    },
    signalWorker(workerId: string, signal: NodeJS.Signals) {
      const child = children.get(workerId);
      if (!child)
        throw new Error(`no worker ${workerId} was started here; started: ${[...children.keys()].join(', ')}`);
      child.kill(signal);
    },
    addWorker: () => spawnWorker(children.size),
    stop,
  };
}

async function waitForExit(children: ChildProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const c of children) {
    while (c.exitCode === null && c.signalCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
  }
}
