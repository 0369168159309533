// Starts a local cluster of nats-servers joined by routes (for tests and benchmarks of the
// collective spread over several servers), waits until every server routes to every other, and
// reads each server's monitoring figures (bytes and CPU) for reports.
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, startNatsServer, type NatsServerHandle, type NatsServerOptions } from './server.js';

export interface NatsClusterHandle {
  /** In start order; server i is named `<name>-<i>`. */
  readonly servers: readonly NatsServerHandle[];
  /** The client URLs of the servers, in the same order. */
  readonly urls: readonly string[];
  /** Resolves once every running server has a route to every other running one. */
  waitForRoutes(timeoutMs?: number): Promise<void>;
  /** Stops every server and removes their temporary files. */
  stop(): Promise<void>;
}

/** What a server's /varz says about its traffic and its process. */
export interface ServerTraffic {
  /** Message bytes received from clients and routes since the server started. */
  inBytes: number;
  /** Message bytes sent to clients and routes since the server started. */
  outBytes: number;
  /** Message bytes sent to and received from the other servers (over routes), from /routez. */
  routeBytes: number;
  /** The server process's CPU use in percent of one core, as /varz reports it. */
  cpu: number;
}

export interface NatsClusterOptions extends Omit<NatsServerOptions, 'cluster' | 'monitorPort' | 'port'> {
  /** The cluster's name, also the prefix of the server names (default tfjs-ddp-local). */
  name?: string;
}

/**
 * Starts `size` servers on free ports, each with monitoring, with routes to all the others, and
 * waits for the routes. JetStream stays off unless asked for (a clustered JetStream wants a quorum
 * of three). Stops what it started when one of them fails.
 */
export async function startNatsCluster(size: number, options: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`expected a cluster of at least 1 server, got ${size}`);
  const { name = 'tfjs-ddp-local', ...serverOptions } = options;
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const servers: NatsServerHandle[] = [];
  const stop = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < size; i++) {
      servers.push(
        await startNatsServer({
          jetstream: false,
          ...serverOptions,
          monitorPort: await freePort(),
          cluster: {
            name,
            serverName: `${name}-${i}`,
            port: routePorts[i],
            routes: routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`),
          },
        }),
      );
    }
    const cluster: NatsClusterHandle = {
      servers,
      urls: servers.map((s) => s.url),
      waitForRoutes: (timeoutMs = 15_000) => waitForRoutes(servers, timeoutMs),
      stop,
    };
    await cluster.waitForRoutes();
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForRoutes(servers: readonly NatsServerHandle[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = servers.filter((s) => s.pid !== undefined);
    const routes = await Promise.all(running.map((s) => routeCount(s).catch(() => -1)));
    if (routes.every((n) => n >= running.length - 1)) return;
    if (Date.now() > deadline) {
      const state = running.map((s, i) => `${s.url}: ${routes[i] < 0 ? 'no answer' : routes[i]}`).join(', ');
      throw new Error(
        `the nats-server cluster did not connect within ${timeoutMs} ms: expected ${running.length - 1} routes ` +
          `on every server, got ${state}`,
      );
    }
    await sleep(50);
  }
}

async function monitor<T>(server: NatsServerHandle, endpoint: string): Promise<T> {
  if (!server.monitorUrl) throw new Error(`${server.url} was started without monitoring; pass a monitorPort`);
  const res = await fetch(`${server.monitorUrl}/${endpoint}`);
  if (!res.ok) throw new Error(`GET ${server.monitorUrl}/${endpoint} answered ${res.status}`);
  return (await res.json()) as T;
}

async function routeCount(server: NatsServerHandle): Promise<number> {
  return (await monitor<{ num_routes: number }>(server, 'routez')).num_routes;
}

/** Reads a server's traffic counters and CPU from its monitoring endpoints. */
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
