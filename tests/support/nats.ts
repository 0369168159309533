// Test fixture: a real nats-server on a free port. In a container (testcontainers, from the image
// tests/support/containers.ts builds here from Debian's nats-server) when a container runtime is
// available, otherwise the nats-server binary from PATH; it says which one it used.
// With TFJS_DDP_TEST_NATS_SERVERS=K (the nats-cluster test project sets 3) it is a cluster of K
// nats-server binaries joined by routes instead, and `urls` lists them all: the cluster tests stop
// and start nodes by process, and routes between containers would need their own network.
// TFJS_DDP_TEST_NATS=binary forces the binary. Tests that kill and restart the server on the same
// address ask for the binary ({ binaryOnly: true }): a restarted container gets a new host port.
// Always pair startNats() with stop() in afterAll/finally; the binary and the container are also
// removed when the test process exits.
import { spawnSync } from 'node:child_process';
import {
  poolUrls,
  startNatsCluster,
  startNatsServer,
  DEFAULT_MAX_PAYLOAD,
  type NatsServerHandle,
} from '@tfjs-ddp/common';
import { containerRuntime, ensureBaseImage, NATS_BASE, testLabels } from './containers.js';

export interface NatsFixture {
  /** The (first) server's URL. */
  readonly url: string;
  /** Every server's URL, in the order the collective places shards on them (sorted): one, or the nodes of the cluster. */
  readonly urls: readonly string[];
  readonly kind: 'testcontainers' | 'nats-server binary' | 'nats-server cluster';
  /** Kill the server, keeping its address; only the binary fixture supports it. */
  kill(hard?: boolean): Promise<void>;
  /** Start it again on the same address after kill(). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsFixtureOptions {
  maxPayload?: number;
  jetstream?: boolean;
  /** Force the binary (tests that restart the server need a fixed address). */
  binaryOnly?: boolean;
}

let announced = false;
function announce(kind: string, url: string): void {
  if (announced) return;
  announced = true;
  process.stderr.write(`[nats fixture] using ${kind} at ${url}\n`);
}

/** Containers not yet stopped: removed on exit, should a test process end without its afterAll. */
const running = new Set<string>();
let exitHookInstalled = false;
function removeOnExit(id: string): void {
  running.add(id);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    if (running.size > 0) spawnSync('docker', ['rm', '-f', '-v', ...running], { timeout: 10_000 });
  });
}

/** The settings startNatsServer gives the binary (packages/common/src/transport/server.ts), inside a container. */
function containerConfig(maxPayload: number, jetstream: boolean): string {
  return [
    'listen: 0.0.0.0:4222',
    `max_payload: ${maxPayload}`,
    `max_pending: ${Math.max(256 * 1024 * 1024, 8 * maxPayload)}`,
    'write_deadline: "60s"',
    jetstream ? 'jetstream { store_dir: "/data", max_memory_store: 268435456, max_file_store: 4294967296 }' : '',
  ].join('\n');
}

/**
 * A daemon on this machine (a unix socket) publishes ports on its loopback too, and the tests'
 * dockerd publishes on nothing else; testcontainers, when it finds itself in a container, would
 * name the bridge's gateway instead, which such a daemon does not listen on.
 */
function localDaemon(): boolean {
  const host = process.env.DOCKER_HOST;
  return !host || host.startsWith('unix://');
}

async function tryContainer(opts: NatsFixtureOptions): Promise<NatsFixture | undefined> {
  if (opts.binaryOnly || process.env.TFJS_DDP_TEST_NATS === 'binary') return undefined;
  const runtime = await containerRuntime();
  if (!runtime.ok) {
    process.stderr.write(`[nats fixture] ${runtime.reason}; using the nats-server binary\n`);
    return undefined;
  }
  try {
    const image = ensureBaseImage(NATS_BASE);
    const { GenericContainer, Wait } = await import('testcontainers');
    const conf = containerConfig(opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, opts.jetstream !== false);
    const container = await new GenericContainer(image)
      .withLabels(testLabels())
      .withCopyContentToContainer([{ content: conf + '\n', target: '/etc/nats/nats.conf' }])
      .withCommand(['-c', '/etc/nats/nats.conf'])
      .withTmpFs({ '/data': 'rw' })
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .withStartupTimeout(30_000)
      .start();
    const id = container.getId();
    removeOnExit(id);
    const url = `nats://${localDaemon() ? '127.0.0.1' : container.getHost()}:${container.getMappedPort(4222)}`;
    announce(`testcontainers (image ${image}, container ${id.slice(0, 12)})`, url);
    const unsupported = async () => {
      throw new Error('kill/start need the nats-server binary fixture: call startNats({ binaryOnly: true })');
    };
    return {
      url,
      urls: [url],
      kind: 'testcontainers',
      kill: unsupported,
      start: unsupported,
      stop: async () => {
        await container.stop({ remove: true, removeVolumes: true, timeout: 0 });
        running.delete(id);
      },
    };
  } catch (err) {
    process.stderr.write(
      `[nats fixture] the container did not start (${(err as Error).message.split('\n')[0]}); falling back to the nats-server binary\n`,
    );
    return undefined;
  }
}

/** The cluster size the environment asks for; 1: a single server. */
export function testClusterSize(): number {
  const text = process.env.TFJS_DDP_TEST_NATS_SERVERS ?? '1';
  const k = Number(text);
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`TFJS_DDP_TEST_NATS_SERVERS: expected a whole number >= 1, got "${text}"`);
  return k;
}

async function startCluster(size: number, opts: NatsFixtureOptions): Promise<NatsFixture> {
  const cluster = await startNatsCluster(size, { maxPayload: opts.maxPayload });
  announce(`a cluster of ${size} nats-server binaries with routes`, cluster.urls.join(','));
  const unsupported = async () => {
    throw new Error('kill/start act on one server; stop a node of the cluster fixture through startNatsCluster');
  };
  const urls = poolUrls(cluster.urls);
  return {
    url: urls[0],
    urls,
    kind: 'nats-server cluster',
    kill: unsupported,
    start: unsupported,
    stop: () => cluster.stop(),
  };
}

export async function startNats(opts: NatsFixtureOptions = {}): Promise<NatsFixture> {
  const size = testClusterSize();
  if (size > 1) return startCluster(size, opts);
  const fromContainer = await tryContainer(opts);
  if (fromContainer) return fromContainer;
  let server: NatsServerHandle;
  try {
    server = await startNatsServer({ maxPayload: opts.maxPayload, jetstream: opts.jetstream });
  } catch (err) {
    throw new Error(
      `no NATS server for the tests: no container runtime is reachable and the binary failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  announce('nats-server binary', server.url);
  return {
    url: server.url,
    urls: [server.url],
    kind: 'nats-server binary',
    kill: (h) => server.kill(h),
    start: () => server.start(),
    stop: () => server.stop(),
  };
}
