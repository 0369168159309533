// `npm run bench:allreduce`: the NATS all-reduce with ranks as separate processes, for each
// number of servers, world size, buffer size and wire dtype, against raw NATS pub->sub bandwidth
// measured through one server in the same run. K servers are a local cluster with routes, the
// shards spread over them; each server's delivery and CPU are read from the server itself.
// Progress goes to stderr, the report to stdout.
import { poolUrls, startNatsCluster, startNatsServer } from '@tfjs-ddp/common';
import { USAGE, itersFor, parseBenchArgs } from './allreduce/args.mjs';
import { progress, runBench } from './runner.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { MAX_PAYLOAD, startRawBaseline } from './allreduce/raw-bandwidth.mjs';
import { startRankPool } from './allreduce/rank-pool.mjs';
import { toJson, toText } from './allreduce/report.mjs';
import { otherChildrenSeconds, sampleServers, serverUsage } from './allreduce/server-stats.mjs';
import { bandwidths, deliveredBytes, median, summary } from './allreduce/stats.mjs';

const MIB = 2 ** 20;

let baselineServer;
let cluster;
async function shutdown() {
  killAllPeers();
  await cluster?.stop();
  await baselineServer?.stop();
}

async function main(args) {
  baselineServer = await startNatsServer({ maxPayload: MAX_PAYLOAD, jetstream: false });
  progress(`nats-server for the raw baseline at ${baselineServer.url}, max_payload ${MAX_PAYLOAD} B`);
  const baseline = await startRawBaseline(baselineServer.url, args.rawMiB, progress);
  const cases = [];
  const clusters = [];
  for (const k of args.servers) {
    cluster = await startNatsCluster(k, { maxPayload: MAX_PAYLOAD });
    // In the collective's order: shard s travels through server s mod K.
    const servers = poolUrls(cluster.urls).map((url) => cluster.servers.find((s) => s.url === url));
    clusters.push({ servers: k, urls: servers.map((s) => s.url) });
    progress(`${k} nats-server${k > 1 ? 's with routes' : ''} at ${servers.map((s) => s.url).join(', ')}`);
    try {
      for (const world of args.worldSizes) {
        progress(`starting ${world} rank processes, each connected to the ${k} server${k > 1 ? 's' : ''}`);
        const pool = await startRankPool(
          servers.map((s) => s.url),
          world,
        );
        try {
          for (const sizeMiB of args.sizesMiB) {
            for (const dtype of args.dtypes) {
              const floats = Math.round((sizeMiB * MIB) / 4);
              const iters = itersFor(args, sizeMiB);
              progress(
                `K=${k} N=${world} ${sizeMiB} MiB ${dtype}: ${args.warmup} warm-up + ${iters} timed all-reduces`,
              );
              const before = await sampleServers(servers);
              const r = await pool.runCase({ floats, dtype, warmup: args.warmup, iters, timeoutMs: 600_000 });
              const after = await sampleServers(servers);
              const usage = serverUsage(before, after);
              const rankCpuSeconds = otherChildrenSeconds(before, after);
              const ops = args.warmup + iters;
              cases.push(
                describeCase({
                  servers,
                  world,
                  sizeMiB,
                  dtype,
                  fp32Bytes: floats * 4,
                  iters,
                  ops,
                  r,
                  usage,
                  rankCpuSeconds,
                }),
              );
              progress(`  median ${cases.at(-1).timeMs.median.toFixed(1)} ms`);
            }
          }
        } finally {
          await pool.stop();
        }
      }
    } finally {
      await cluster.stop();
      cluster = undefined;
    }
  }
  const raw = await baseline.finish();
  for (const c of cases) {
    c.ratio = c.deliveryRate / raw.bytesPerSecond;
    for (const s of c.perServer) s.ratio = s.deliveryRate / raw.bytesPerSecond;
  }
  return {
    server: { url: baselineServer.url, maxPayload: baseline.serverMaxPayload, chunkBytes: baseline.chunkBytes },
    clusters,
    warmup: args.warmup,
    raw,
    cases,
  };
}

/**
 * `usage`: per server (in placement order) what it sent and the CPU it used over the whole case,
 * warm-up included: a server's bytes per all-reduce are its bytes out divided by the `ops`
 * all-reduces run (the barriers around them add a few hundred bytes), its delivery rate those over
 * the median time, as for the formula's delivery. `rankCpuSeconds`: what the rank processes used
 * over the same span.
 */
function describeCase({ servers, world, sizeMiB, dtype, fp32Bytes, iters, ops, r, usage, rankCpuSeconds }) {
  const timeMs = summary(r.ms);
  const seconds = timeMs.median / 1000;
  const delivered = deliveredBytes(fp32Bytes, world, dtype);
  const { algbw, busbw } = bandwidths(fp32Bytes, world, seconds);
  const perServer = usage.map((u, i) => ({
    url: servers[i].url,
    deliveredBytesPerOp: u.outBytes / ops,
    deliveryRate: u.outBytes / ops / seconds,
    routeBytesPerOp: u.routeBytes / ops,
    cpuPercent: u.cpuPercent,
    cpuFrom: u.cpuFrom,
    cpuSecondsPerOp: u.cpuSeconds === undefined ? undefined : u.cpuSeconds / ops,
  }));
  return {
    servers: servers.length,
    world,
    sizeMiB,
    fp32Bytes,
    dtype,
    iters,
    timeMs,
    algbw,
    busbw,
    deliveredBytesPerOp: delivered,
    measuredDeliveredBytesPerOp: median(r.deliveredBytes),
    deliveryRate: delivered / seconds,
    rankCpuSecondsPerOp: rankCpuSeconds === undefined ? undefined : rankCpuSeconds / ops,
    perServer,
  };
}

runBench({ name: 'allreduce', usage: USAGE, parse: parseBenchArgs, main, report: { toJson, toText }, shutdown });
