// `npm run bench:allreduce`: the NATS all-reduce with ranks as separate processes, for each
// world size, buffer size and wire dtype, against raw NATS pub->sub bandwidth measured through
// the same server in the same run. Progress goes to stderr, the report to stdout.
import { startNatsServer } from '@tfjs-ddp/common';
import { USAGE, itersFor, parseBenchArgs } from './allreduce/args.mjs';
import { progress, runBench } from './runner.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { MAX_PAYLOAD, startRawBaseline } from './allreduce/raw-bandwidth.mjs';
import { startRankPool } from './allreduce/rank-pool.mjs';
import { toJson, toText } from './allreduce/report.mjs';
import { bandwidths, deliveredBytes, median, summary } from './allreduce/stats.mjs';

const MIB = 2 ** 20;

let server;
async function shutdown() {
  killAllPeers();
  await server?.stop();
}

async function main(args) {
  server = await startNatsServer({ maxPayload: MAX_PAYLOAD, jetstream: false });
  progress(`nats-server at ${server.url}, max_payload ${MAX_PAYLOAD} B`);
  const baseline = await startRawBaseline(server.url, args.rawMiB, progress);
  const cases = [];
  for (const world of args.worldSizes) {
    progress(`starting ${world} rank processes`);
    const pool = await startRankPool(server.url, world);
    try {
      for (const sizeMiB of args.sizesMiB) {
        for (const dtype of args.dtypes) {
          const floats = Math.round((sizeMiB * MIB) / 4);
          const iters = itersFor(args, sizeMiB);
          progress(`N=${world} ${sizeMiB} MiB ${dtype}: ${args.warmup} warm-up + ${iters} timed all-reduces`);
          const r = await pool.runCase({ floats, dtype, warmup: args.warmup, iters, timeoutMs: 600_000 });
          cases.push(describeCase({ world, sizeMiB, dtype, fp32Bytes: floats * 4, iters, r }));
          progress(`  median ${cases.at(-1).timeMs.median.toFixed(1)} ms`);
        }
      }
    } finally {
      await pool.stop();
    }
  }
  const raw = await baseline.finish();
  for (const c of cases) c.ratio = c.deliveryRate / raw.bytesPerSecond;
  return {
    server: { url: server.url, maxPayload: baseline.serverMaxPayload, chunkBytes: baseline.chunkBytes },
    warmup: args.warmup,
    raw,
    cases,
  };
}

function describeCase({ world, sizeMiB, dtype, fp32Bytes, iters, r }) {
  const timeMs = summary(r.ms);
  const seconds = timeMs.median / 1000;
  const delivered = deliveredBytes(fp32Bytes, world, dtype);
  const { algbw, busbw } = bandwidths(fp32Bytes, world, seconds);
  const deliveryRate = delivered / seconds;
  return {
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
    deliveryRate,
  };
}

runBench({ name: 'allreduce', usage: USAGE, parse: parseBenchArgs, main, report: { toJson, toText }, shutdown });
