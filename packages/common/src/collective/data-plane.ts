// Which NATS server carries which shard, and how a server that goes away fails the operation.
//
// With K servers up when the collective is created, shard s (owned by rank s) travels through
// server s mod K: its reduce-scatter contributions (`rs.s`), its reduced chunks (`ag.s`) and a
// broadcast from rank s (`bc.s`). Every rank publishes and subscribes each subject on that one
// server, which is what spreads the bytes: a server carries about 1/K of every all-reduce. It is
// also why nothing crosses the cluster's routes: a server forwards a message over a route only to
// a subscriber on another server. And it is what makes a subscription safe to publish to once its
// rank's flush returned: the flush confirms the subscription on that server, whereas interest
// reaches the other servers over the routes later, asynchronously.
//
// The placement decides where bytes flow, never what is summed: two ranks that disagree on which
// servers are up (one saw a disconnect the other has not yet) still sum correctly, through the
// routes, or fail their operation by its deadline.
import type { NatsConnection } from '@nats-io/nats-core';
import {
  maxPayload,
  onPermissionViolation,
  permissionViolationMessage,
  type NatsServerPool,
} from '../transport/index.js';
import { CollectiveServerError, type CollectiveOperation, type ServerFailure } from './errors.js';

export interface PlacedServer {
  readonly url: string;
  readonly nc: NatsConnection;
  /** Its index in the pool's URL list, for error messages. */
  readonly index: number;
}

export interface DataPlane {
  /** The server that carries shard `s`'s subjects. */
  serverOf(shard: number): PlacedServer;
  /** Every server some shard of this world is placed on. */
  readonly used: readonly PlacedServer[];
  /** The smallest max_payload among them: chunk boundaries must be the same on every server. */
  readonly maxPayload: number;
  /** A used server that is down or closed now, if any: no operation can complete through it. */
  unavailable(): { server: PlacedServer; failure: ServerFailure } | undefined;
  /** Calls `listener` when a used server goes down ('lost') or comes back ('reconnected'); returns the unsubscribe. */
  onFailure(listener: (server: PlacedServer, failure: ServerFailure) => void): () => void;
  /**
   * Calls `listener` with the reason when a used server refuses a publish or subscription of a
   * subject starting with `prefix` (the credential's permissions); returns the unsubscribe.
   */
  onRefused(prefix: string, listener: (why: string) => void): () => void;
  /**
   * Resolves once every used server has received what was sent through it (subscriptions, say);
   * rejects naming the server when one goes down meanwhile, whose flush would wait for a reconnect
   * that may never come.
   */
  flush(): Promise<void>;
  /** The error an operation fails with because of `server`. */
  error(
    server: PlacedServer,
    failure: ServerFailure,
    operation: CollectiveOperation,
    op: number,
  ): CollectiveServerError;
}

/** Places the shards of `worldSize` ranks on the servers of `servers` that are up now. */
export function createDataPlane(
  servers: NatsConnection | NatsServerPool,
  worldSize: number,
  generation: number,
): DataPlane {
  const pool = 'connections' in servers ? servers : singleServer(servers);
  // A connection being re-established has no server info yet, whatever its last status said.
  const live = pool.connections.map((_, i) => i).filter((i) => pool.isUp(i) && pool.connections[i].info);
  if (live.length === 0) {
    throw new Error(
      `none of the NATS servers ${pool.urls.join(', ')} is connected; the collective needs at least one ` +
        '(they are retried: create the collective again once one is back)',
    );
  }
  const placed = live.map((i) => ({ url: pool.urls[i], nc: pool.connections[i], index: i }));
  const serverOf = (shard: number) => placed[shard % placed.length];
  const used = placed.slice(0, Math.min(placed.length, worldSize));
  return {
    serverOf,
    used,
    maxPayload: Math.min(...used.map((s) => maxPayload(s.nc))),
    unavailable() {
      const server = used.find((s) => !pool.isUp(s.index));
      return server && { server, failure: server.nc.isClosed() ? 'closed' : 'down' };
    },
    onFailure(listener) {
      return pool.onChange((index, up) => {
        const server = used.find((s) => s.index === index);
        if (server) listener(server, up ? 'reconnected' : 'lost');
      });
    },
    onRefused(prefix, listener) {
      const detach = used.map((s) =>
        onPermissionViolation(s.nc, (v) => {
          if (v.subject.startsWith(prefix)) listener(permissionViolationMessage(v));
        }),
      );
      return () => detach.forEach((d) => d());
    },
    async flush() {
      let detach = () => {};
      const lost = new Promise<never>((_, reject) => {
        detach = pool.onChange((index, up) => {
          if (!up && used.some((s) => s.index === index))
            reject(new Error(`lost the connection to NATS server ${pool.urls[index]}`));
        });
      });
      try {
        await Promise.race([Promise.all(used.map((s) => s.nc.flush())), lost]);
      } finally {
        detach();
      }
    },
    error(server, failure, operation, op) {
      const shards = [...Array(worldSize).keys()].filter((s) => serverOf(s) === server);
      const where = { server: server.url, index: server.index, count: pool.urls.length, shards };
      return new CollectiveServerError(operation, op, generation, where, failure);
    },
  };
}

/**
 * One connection as a pool of one server whose state the caller watches, as before pools existed:
 * an operation fails at once only when the connection is closed.
 */
function singleServer(nc: NatsConnection): NatsServerPool {
  return {
    urls: [nc.getServer()],
    connections: [nc],
    isUp: () => !nc.isClosed(),
    onChange: () => () => {},
    close: async () => {},
  };
}
