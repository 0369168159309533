// One NATS connection per server of a job: the collective's data plane. With K servers listed,
// the shards of an all-reduce are spread over them (collective/data-plane.ts), so a rank needs a
// connection to each one: a client given several URLs connects to only one of them. Every rank
// must list the same servers; they are sorted here, so the order they were given in does not
// matter and every rank numbers them alike.
import type { NatsConnection } from '@nats-io/transport-node';
import { formatIssues } from '../protocol/index.js';
import { connectNats } from './connect.js';
import { natsOptionsSchema, type NatsOptions } from './options.js';

export interface NatsServerPool {
  /** The servers' URLs, sorted, without repeats: the order the collective places shards in. */
  readonly urls: readonly string[];
  /** connections[i] talks to urls[i] and to no other server. */
  readonly connections: readonly NatsConnection[];
  /** False from a disconnect of connections[i] until it is re-established, and once it is closed. */
  isUp(server: number): boolean;
  /** Calls `listener` whenever a connection goes down or comes back; returns the unsubscribe. */
  onChange(listener: (server: number, up: boolean) => void): () => void;
  /** Closes the connections it opened; a control connection it reuses stays open. */
  close(): Promise<void>;
}

/** The URLs of `servers` in the order every rank agrees on: trimmed, sorted, without repeats. */
export function poolUrls(servers: readonly string[]): string[] {
  return [...new Set(servers.map((s) => s.trim()).filter(Boolean))].sort();
}

/**
 * Connects to every server of `options.servers`, each connection pinned to its server. With one
 * server and a `control` connection to it, that connection is the whole pool, as before there were
 * pools. Fails, naming the server, unless every server accepts the connection.
 */
export async function connectServerPool(options: NatsOptions, control?: NatsConnection): Promise<NatsServerPool> {
  const parsed = natsOptionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(`invalid NATS options: ${formatIssues(parsed.error, '(options)')}`);
  const urls = poolUrls(parsed.data.servers);
  if (urls.length === 1 && control) return watchPool(urls, [control], []);
  const name = parsed.data.name ?? 'tfjs-ddp';
  const opened = await Promise.allSettled(
    urls.map((url, i) =>
      connectNats({ ...options, servers: [url], name: `${name} data ${i + 1}/${urls.length}` }, { pinned: true }),
    ),
  );
  const connections = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const failed = opened.findIndex((o) => o.status === 'rejected');
  if (failed >= 0) {
    await Promise.allSettled(connections.map((nc) => nc.close()));
    const reason = (opened[failed] as PromiseRejectedResult).reason as Error;
    throw new Error(
      `cannot connect to NATS server ${urls[failed]} (${failed + 1} of the ${urls.length} servers listed; the ` +
        `all-reduce spreads its shards over every one, so each must be reachable): ${reason.message}`,
      { cause: reason },
    );
  }
  return watchPool(urls, connections, connections);
}

function watchPool(urls: string[], connections: NatsConnection[], owned: NatsConnection[]): NatsServerPool {
  const up = connections.map(() => true);
  const listeners = new Set<(server: number, up: boolean) => void>();
  const set = (server: number, value: boolean) => {
    if (up[server] === value) return;
    up[server] = value;
    for (const l of listeners) l(server, value);
  };
  // The status stream ends when the connection closes.
  connections.forEach(
    (nc, i) =>
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect' || s.type === 'close') set(i, false);
          else if (s.type === 'reconnect') set(i, true);
        }
        set(i, false);
      })(),
  );
  return {
    urls,
    connections,
    isUp: (server) => up[server] && !connections[server].isClosed(),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      await Promise.allSettled(owned.map((nc) => nc.close()));
    },
  };
}
