// Test fixture: a real nats-server on a free port. Uses testcontainers when a container
// runtime answers, otherwise the nats-server binary from PATH, and says which one it used.
// With TFJS_DDP_TEST_NATS_SERVERS=K (the nats-cluster test project sets 3) it is a cluster of K
// nats-server binaries joined by routes instead, and `urls` lists them all.
// Always pair startNats() with stop() in afterAll/finally; the binary is also killed on exit.
import { existsSync } from 'node:fs';
import {
  poolUrls,
  startNatsCluster,
  startNatsServer,
  DEFAULT_MAX_PAYLOAD,
  type NatsServerHandle,
} from '@tfjs-ddp/common';

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

function containerRuntimeLikely(): boolean {
  if (process.env.TFJS_DDP_TEST_NATS === 'binary') return false;
  return (
    Boolean(process.env.DOCKER_HOST) ||
    existsSync('/var/run/docker.sock') ||
    existsSync(`${process.env.XDG_RUNTIME_DIR ?? ''}/podman/podman.sock`)
  );
}

async function tryContainer(opts: NatsFixtureOptions): Promise<NatsFixture | undefined> {
  if (opts.binaryOnly || !containerRuntimeLikely()) return undefined;
  try {
    const { NatsContainer } = await import('@testcontainers/nats');
    const args = ['--max_payload', String(opts.maxPayload ?? DEFAULT_MAX_PAYLOAD)];
    if (opts.jetstream !== false) args.push('-js');
    const container = await new NatsContainer('nats:2.10.22-alpine').withArg('--', args.join(' ')).start();
    const url = `nats://${container.getHost()}:${container.getMappedPort(4222)}`;
    announce('testcontainers', url);
    const unsupported = async () => {
      throw new Error('kill/start need the nats-server binary fixture: call startNats({ binaryOnly: true })');
    };
    return {
      url,
      urls: [url],
      kind: 'testcontainers',
      kill: unsupported,
      start: unsupported,
      stop: async () => void (await container.stop()),
    };
  } catch (err) {
    process.stderr.write(
      `[nats fixture] container runtime not usable (${(err as Error).message.split('\n')[0]}); falling back to the nats-server binary\n`,
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
