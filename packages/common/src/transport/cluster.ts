// Starts K local nats-servers joined by routes into one cluster (benchmarks and tests of the
// collective spread over several servers), waits until every node has a route to every other one,
// and reads a node's traffic and CPU from its monitoring endpoints.
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startNatsServer, type NatsServerHandle, type NatsServerOptions } from './server.js';

export interface NatsClusterHandle {
  /** The nodes, in start order. */
  readonly servers: readonly NatsServerHandle[];
  /** Their client URLs, in the same order; a rank connects to each (connectServerPool). */
  readonly urls: readonly string[];
  /** Resolves once every running node has a route to every other running one (after a restart, say). */
  waitForRoutes(): Promise<void>;
  /** Stops every node and removes their temporary files. */
  stop(): Promise<void>;
}

/** A node's counters since it started, from /varz and /routez. */
export interface ServerTraffic {
  /** Message bytes (payload and headers) received from clients and routes. */
  inBytes: number;
  /** Message bytes sent to clients and routes. */
  outBytes: number;
  /** Message bytes to and from the other nodes, over the routes, both directions. */
  routeBytes: number;
  /** The node's CPU use in percent of one core, as the server samples it. */
  cpu: number;
}

export type NatsClusterOptions = Omit<NatsServerOptions, 'cluster' | 'port' | 'monitorPort'>;

const ROUTES_TIMEOUT_MS = 20_000;

/**
 * Starts `size` nats-servers with monitoring, each routed to all the others: a subscriber on one
 * node receives what is published on another. JetStream stays off unless asked for (clustered
 * JetStream wants a quorum). Stops what it started when one node fails to start.
 */
export async function startNatsCluster(size: number, options: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`expected a cluster of at least 1 node, got ${size}`);
  const name = `tfjs-ddp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  // Every port chosen before any node starts: a node's free client port must not be another's route port.
  const ports = await distinctFreePorts(3 * size);
  const node = (i: number) => ({ client: ports[3 * i], monitor: ports[3 * i + 1], route: ports[3 * i + 2] });
  const nodes = [...Array(size).keys()];
  const routes = nodes.map((i) => `nats-route://127.0.0.1:${node(i).route}`);
  const started = await Promise.allSettled(
    nodes.map((i) =>
      startNatsServer({
        jetstream: false,
        ...options,
        port: node(i).client,
        monitorPort: node(i).monitor,
        cluster: size > 1 ? { name, serverName: `${name}-${i}`, port: node(i).route, routes } : undefined,
      }),
    ),
  );
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => void (await Promise.allSettled(servers.map((s) => s.stop())));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const cluster = { servers, urls: servers.map((s) => s.url), waitForRoutes: () => waitForRoutes(servers), stop };
  try {
    if (failed) throw failed.reason;
    await cluster.waitForRoutes();
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}

/** Reads a node's counters; it must have been started with a `monitorPort`. */
export async function serverTraffic(server: NatsServerHandle): Promise<ServerTraffic> {
  const [varz, routez] = await Promise.all([
    monitor<{ in_bytes: number; out_bytes: number; cpu: number }>(server, 'varz'),
    monitor<{ routes?: { in_bytes: number; out_bytes: number }[] }>(server, 'routez'),
  ]);
  return {
    inBytes: varz.in_bytes,
    outBytes: varz.out_bytes,
    routeBytes: (routez.routes ?? []).reduce((sum, r) => sum + r.in_bytes + r.out_bytes, 0),
    cpu: varz.cpu,
  };
}

async function monitor<T>(server: NatsServerHandle, endpoint: string): Promise<T> {
  if (!server.monitorUrl)
    throw new Error(`nats-server ${server.url} has no monitoring port: start it with a monitorPort`);
  const res = await fetch(`${server.monitorUrl}/${endpoint}`);
  if (!res.ok) throw new Error(`GET ${server.monitorUrl}/${endpoint} answered ${res.status} ${res.statusText}`);
  return (await res.json()) as T;
}

async function waitForRoutes(servers: readonly NatsServerHandle[]): Promise<void> {
  const deadline = Date.now() + ROUTES_TIMEOUT_MS;
  // Other nodes, not routes: nats-server 2.10 pools several route connections per pair.
  const peersOf = async (s: NatsServerHandle) =>
    new Set((await monitor<{ routes?: { remote_id: string }[] }>(s, 'routez')).routes?.map((r) => r.remote_id)).size;
  for (;;) {
    const running = servers.filter((s) => s.pid !== undefined);
    const peers = await Promise.all(running.map((s) => peersOf(s).catch(() => -1)));
    if (peers.every((n) => n === running.length - 1)) return;
    if (Date.now() > deadline) {
      const state = running.map((s, i) => `${s.url}: ${peers[i] < 0 ? 'no answer' : peers[i]}`).join(', ');
      throw new Error(
        `the nats-server cluster did not connect within ${ROUTES_TIMEOUT_MS / 1000} s: expected routes to ` +
          `${running.length - 1} other nodes on every node, got ${state}`,
      );
    }
    await sleep(50);
  }
}

/** Free ports, none repeated: ports picked one after another may coincide once released. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
