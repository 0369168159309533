// Starts a local nats-server process (for `tfjs-ddp local`, benchmarks and tests) on a free
// port with settings sized for gradient traffic, and stops it reliably.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NatsServerOptions {
  /** Largest message body in bytes (the server's max_payload). */
  maxPayload?: number;
  /** Enable JetStream (object store for datasets and checkpoints). */
  jetstream?: boolean;
  /** Require this user and password from every client. */
  auth?: { user: string; password: string };
  /** A whole `authorization { ... }` block instead, e.g. role users from {@link authorizationBlock}. */
  authorization?: string;
  /** Client port; default: a free one. */
  port?: number;
  /** Serve the monitoring endpoints (/varz, /routez, ...) on this port: {@link NatsServerHandle.monitorUrl}. */
  monitorPort?: number;
  /** Join a cluster: listen for routes on `port` and connect to the others' `routes`. */
  cluster?: NatsClusterMembership;
}

export interface NatsClusterMembership {
  /** The cluster's name, the same on every node. */
  name: string;
  /** This node's server_name, unique in the cluster (JetStream needs one). */
  serverName: string;
  /** Port this node accepts routes on. */
  port: number;
  /** Route URLs (nats-route://host:port) of the nodes to connect to; its own may be among them. */
  routes: string[];
}

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Its temporary directory (configuration, JetStream store), removed by stop() or when its starter dies. */
  readonly dir: string;
  /** http://host:port of the monitoring endpoints when started with a `monitorPort`. */
  readonly monitorUrl: string | undefined;
  /** Kills the server (SIGKILL when `hard`), keeping its port and store for {@link start}. */
  kill(hard?: boolean): Promise<void>;
  /** Starts it again on the same port, e.g. after {@link kill} to simulate an outage. */
  start(): Promise<void>;
  /** Stops the server and removes its temporary files. */
  stop(): Promise<void>;
}

export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
const guards = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const g of guards) g.kill('SIGKILL');
    for (const p of live) p.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}

/**
 * A guard that kills the server when this process dies without running its exit hook (SIGKILL, a
 * crash of Node itself): a shell whose stdin is a pipe from this process. The kernel closes the pipe
 * when this process dies, the shell's `read` returns, and it kills the server, waits (up to 5 s) for
 * it to be gone and removes its directory. Stopping the server kills the guard first, so it never
 * signals a pid that may have been reused.
 */
const GUARD_SCRIPT =
  'read _; kill -KILL "$1" 2>/dev/null; i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; rm -rf "$2"';

function spawnGuard(serverPid: number, dir: string): ChildProcess | undefined {
  try {
    const guard = spawn('sh', ['-c', GUARD_SCRIPT, 'tfjs-ddp-nats-guard', `${serverPid}`, dir], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    guard.on('error', () => {}); // no sh: the exit hook still covers ordinary exits
    guard.stdin?.on('error', () => {});
    guard.unref();
    (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    guards.add(guard);
    guard.once('exit', () => guards.delete(guard));
    return guard;
  } catch {
    return undefined;
  }
}

/** Runs TFJS_DDP_NATS_SERVER, or `nats-server` from PATH, on a free port. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = process.env.TFJS_DDP_NATS_SERVER ?? 'nats-server';
  const port = options.port ?? (await freePort());
  const { monitorPort } = options;
  const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-nats-'));
  dirs.add(dir);
  const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  // Large pending buffers and a long write deadline: a rank that is busy computing must not be
  // cut off as a slow consumer while the server holds its share of a 64 MiB all-reduce.
  const conf = [
    `listen: 127.0.0.1:${port}`,
    `max_payload: ${maxPayload}`,
    `max_pending: ${Math.max(256 * 1024 * 1024, 8 * maxPayload)}`,
    `write_deadline: "60s"`,
    monitorPort === undefined ? '' : `http: 127.0.0.1:${monitorPort}`,
    options.cluster ? clusterBlock(options.cluster) : '',
    options.authorization ??
      (options.auth
        ? `authorization { user: ${JSON.stringify(options.auth.user)}, password: ${JSON.stringify(options.auth.password)} }`
        : ''),
    options.jetstream === false
      ? ''
      : `jetstream { store_dir: "${join(dir, 'js')}", max_memory_store: 268435456, max_file_store: 4294967296 }`,
  ].join('\n');
  const confPath = join(dir, 'nats.conf');
  await writeFile(confPath, conf + '\n');

  let child: ChildProcess | undefined;
  let guard: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const p = spawn(binary, ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = p;
    live.add(p);
    installExitHook();
    let output = '';
    const onData = (b: Buffer) => {
      output += b.toString();
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    const spawnError = new Promise<never>((_, reject) =>
      p.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new Error(
                `nats-server not found (tried "${binary}"). Install it (apt-get install -y nats-server), set TFJS_DDP_NATS_SERVER to its path, or pass --nats URL to use a running server.`,
              )
            : err,
        ),
      ),
    );
    p.once('exit', () => live.delete(p));
    const deadline = Date.now() + 15_000;
    const ready = (async () => {
      while (!output.includes('Server is ready')) {
        if (p.exitCode !== null)
          throw new Error(`nats-server exited with code ${p.exitCode} while starting:\n${output.slice(-2000)}`);
        if (Date.now() > deadline)
          throw new Error(`nats-server did not become ready within 15 s:\n${output.slice(-2000)}`);
        await sleep(20);
      }
    })();
    try {
      await Promise.race([ready, spawnError]);
    } catch (err) {
      p.kill('SIGKILL');
      throw err;
    }
    if (p.pid !== undefined) guard = spawnGuard(p.pid, dir);
  };

  const kill = async (hard = false): Promise<void> => {
    guard?.kill('SIGKILL');
    guard = undefined;
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill(hard ? 'SIGKILL' : 'SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  };

  try {
    await launch();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw err;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    monitorUrl: monitorPort === undefined ? undefined : `http://127.0.0.1:${monitorPort}`,
    get pid() {
      return child?.pid;
    },
    kill,
    start: launch,
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

function clusterBlock(c: NatsClusterMembership): string {
  const routes = c.routes.map((r) => JSON.stringify(r)).join(', ');
  return [
    `server_name: ${JSON.stringify(c.serverName)}`,
    `cluster { name: ${JSON.stringify(c.name)}, listen: 127.0.0.1:${c.port}, routes: [${routes}] }`,
  ].join('\n');
}
