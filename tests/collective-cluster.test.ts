// The all-reduce over a cluster of nats-servers joined by routes: shard s travels through server
// s mod K, so each server carries its shards' bytes and nothing crosses the routes (measured with
// the servers' own counters); the result is bit for bit the same for K = 1, 2, 3; and a server
// killed mid-operation fails the operation naming it, after which a new collective runs on the
// servers still up. The collective's other suites run on a cluster too (the nats-cluster project).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CollectiveServerError,
  createNatsCollective,
  poolUrls,
  serverTraffic,
  silentLogger,
  startNatsCluster,
  type Collective,
  type NatsClusterHandle,
  type NatsServerHandle,
  type WireDtype,
} from '@tfjs-ddp/common';
import { expectSameBits, expectedSum, randomBuffers, startRanks, until } from './support/collective-ranks.js';

/** 64 KiB chunks: the NATS headers add well under 1 % to the payload. */
const CHUNK = 64 * 1024;

/** Handles of the cluster's nodes in the collective's order (sorted URLs). */
function inPlacementOrder(cluster: NatsClusterHandle): NatsServerHandle[] {
  return poolUrls(cluster.urls).map((url) => cluster.servers.find((s) => s.url === url)!);
}

interface Traffic {
  /** Message bytes into and out of each node, from its clients and routes. */
  inBytes: number[];
  outBytes: number[];
  /** Message bytes over the routes, both directions, all nodes together. */
  routeBytes: number;
}

async function traffic(servers: NatsServerHandle[]): Promise<Traffic> {
  const t = await Promise.all(servers.map((s) => serverTraffic(s)));
  return {
    inBytes: t.map((x) => x.inBytes),
    outBytes: t.map((x) => x.outBytes),
    routeBytes: t.reduce((n, x) => n + x.routeBytes, 0),
  };
}

describe('on a cluster of 3 nats-servers with routes', () => {
  let cluster: NatsClusterHandle;
  let servers: NatsServerHandle[];
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    servers = inPlacementOrder(cluster);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it.each([3, 4, 6])(
    'with %i ranks each server carries the bytes of the shards placed on it, and nothing crosses the routes',
    async (worldSize) => {
      const ranks = await startRanks(poolUrls(cluster.urls), worldSize, { chunkBytes: CHUNK });
      try {
        const length = 3 * 4 * 5 * 2 ** 14;
        const inputs = randomBuffers(worldSize, length, worldSize);
        const buffers = inputs.map((b) => Float32Array.from(b));
        const before = await traffic(servers);
        await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r])));
        const after = await traffic(servers);
        const expected = expectedSum(inputs);
        for (const [r, b] of buffers.entries()) expectSameBits(b, expected, `rank ${r}`);

        // Shard s (length/N floats) goes through server s mod 3: N-1 contributions and the owner's
        // reduced shard come in, N-1 contributions go to the owner and N-1 reduced copies go out.
        const shardBytes = (length / worldSize) * 4;
        const shardsOn = [0, 1, 2].map((k) => [...Array(worldSize).keys()].filter((s) => s % 3 === k).length);
        const total = 2 * (worldSize - 1) * length * 4;
        for (let k = 0; k < 3; k++) {
          const expectedIn = shardsOn[k] * worldSize * shardBytes;
          const expectedOut = shardsOn[k] * 2 * (worldSize - 1) * shardBytes;
          const inBytes = after.inBytes[k] - before.inBytes[k];
          const outBytes = after.outBytes[k] - before.outBytes[k];
          // Above the payload by the NATS headers of each chunk (and the servers' own chatter): under 2 %.
          expect(inBytes, `server ${k} in`).toBeGreaterThanOrEqual(expectedIn);
          expect(inBytes, `server ${k} in`).toBeLessThan(expectedIn * 1.02);
          expect(outBytes, `server ${k} out`).toBeGreaterThanOrEqual(expectedOut);
          expect(outBytes, `server ${k} out`).toBeLessThan(expectedOut * 1.02);
          // When the world is a multiple of K every server delivers a third of the all-reduce's bytes.
          if (worldSize % 3 === 0) expect(outBytes / total).toBeCloseTo(1 / 3, 1);
        }
        expect(after.routeBytes - before.routeBytes, 'bytes over the routes').toBeLessThan(total * 0.001);
      } finally {
        await ranks.close();
      }
    },
  );

  it.each([['f32'], ['bf16']] as [WireDtype][])(
    'gives the same %s bits on every rank through 1, 2 or 3 servers: the rank-order sum',
    async (dtype) => {
      const inputs = randomBuffers(5, 40_009, 17);
      const expected = expectedSum(inputs, dtype);
      for (const k of [1, 2, 3]) {
        const ranks = await startRanks(poolUrls(cluster.urls).slice(0, k), 5, { chunkBytes: 4096 });
        try {
          const buffers = inputs.map((b) => Float32Array.from(b));
          await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r], { dtype })));
          for (const [r, b] of buffers.entries()) expectSameBits(b, expected, `K=${k}, rank ${r}`);
        } finally {
          await ranks.close();
        }
      }
    },
  );
});

describe('a server killed mid-operation', () => {
  let cluster: NatsClusterHandle;
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('fails the operation on every rank naming that server; a new collective then runs on the other two, and on all three once it is back', async () => {
    const urls = poolUrls(cluster.urls);
    const victim = inPlacementOrder(cluster)[2];
    // A deadline far beyond the test's: only the lost server can end these operations.
    const ranks = await startRanks(urls, 3, { chunkBytes: 4096, timeoutMs: 600_000 });
    try {
      const [c0, c1, c2] = ranks.collectives;
      const inputs = randomBuffers(3, 30_000, 5);
      // Ranks 0 and 1 are in the all-reduce, waiting for rank 2, which has not started yet.
      const inFlight = Promise.allSettled([c0, c1].map((c, r) => c.allReduce(Float32Array.from(inputs[r]))));
      await until(() => ranks.observers[2].bytesInTotal() > 0, "rank 2 to receive the others' chunks");
      await victim.kill(true);
      for (const result of await inFlight) {
        expect(result.status).toBe('rejected');
        const err = (result as PromiseRejectedResult).reason as CollectiveServerError;
        expect(err).toBeInstanceOf(CollectiveServerError);
        expect(err.server).toBe(victim.url);
        expect(err.message).toMatch(
          new RegExp(
            `^allReduce op 0 \\(generation 0\\) failed: this rank lost its connection to NATS server ${victim.url} ` +
              `\\(server 3 of 3, carrying shard 2\\)`,
          ),
        );
      }
      // Rank 2 starts once it has seen the loss: its operation fails at once, naming the same server.
      await until(() => !ranks.pools[2].isUp(2), 'rank 2 to see server 3 go');
      await expect(c2.allReduce(Float32Array.from(inputs[2]))).rejects.toThrow(
        `failed: this rank is not connected to NATS server ${victim.url}`,
      );
      await Promise.all(ranks.collectives.map((c) => c.close()));

      // What the recovery path does: the next generation's collectives, placed on the servers up now.
      const next = (generation: number) =>
        Promise.all(
          ranks.pools.map((pool, rank) =>
            createNatsCollective(pool, {
              job: 'test-job',
              generation,
              rank,
              worldSize: 3,
              chunkBytes: 4096,
              log: silentLogger,
            }),
          ),
        );
      const reduceOn = async (collectives: Collective[], what: string) => {
        const buffers = inputs.map((b) => Float32Array.from(b));
        await Promise.all(collectives.map((c, r) => c.allReduce(buffers[r])));
        for (const [r, b] of buffers.entries()) expectSameBits(b, expectedSum(inputs), `rank ${r} ${what}`);
        await Promise.all(collectives.map((c) => c.close()));
      };
      await reduceOn(await next(1), 'on the two servers left');

      await victim.start();
      await until(() => ranks.pools.every((p) => p.isUp(2)), 'every rank to reconnect to server 3', 30_000);
      const before = await serverTraffic(victim);
      await reduceOn(await next(2), 'on three servers again');
      expect((await serverTraffic(victim)).outBytes, 'bytes through server 3 once back').toBeGreaterThan(
        before.outBytes,
      );
    } finally {
      await ranks.close();
    }
  });
});
