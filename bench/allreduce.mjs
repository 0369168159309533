// `npm run bench:allreduce`: the NATS all-reduce with ranks as separate processes, for each
// world size, buffer size and wire dtype, against raw NATS pub->sub bandwidth measured through
// the same server in the same run. Progress goes to stderr, the report to stdout.
import {
  chunkElementsFor,
  connectNats,
  maxPayload,
  natsCollectiveOptionsSchema,
  startNatsServer,
} from '@tfjs-ddp/common';
import { USAGE, itersFor, parseBenchArgs } from './allreduce/args.mjs';
import { progress, runBench } from './runner.mjs';
import { describeMachine } from './allreduce/machine.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { measureRawBandwidth } from './allreduce/raw-bandwidth.mjs';
import { startRankPool } from './allreduce/rank-pool.mjs';
import { toJson, toText } from './allreduce/report.mjs';
import { bandwidths, deliveredBytes, median, summary } from './allreduce/stats.mjs';

const MIB = 2 ** 20;
const MAX_PAYLOAD = 8 * MIB;
const RAW_REPEATS_EACH_SIDE = 3;

let server;
async function shutdown() {
  killAllPeers();
  await server?.stop();
}

async function main(args) {
  const machine = await describeMachine();
  server = await startNatsServer({ maxPayload: MAX_PAYLOAD, jetstream: false });
  progress(`nats-server at ${server.url}, max_payload ${MAX_PAYLOAD} B`);
  try {
    const probe = await connectNats({ servers: [server.url], name: 'bench-probe' });
    const serverMaxPayload = maxPayload(probe);
    await probe.close();
    const chunkBytes = collectiveChunkBytes(serverMaxPayload);

    // Measured before and after the cases, so a change in machine load during the run shows up
    // in the baseline's spread instead of silently skewing every ratio.
    const rawOptions = { totalBytes: args.rawMiB * MIB, chunkBytes, repeats: RAW_REPEATS_EACH_SIDE };
    const rawBefore = await measureRawBandwidth(server.url, {
      ...rawOptions,
      progress: (l) => progress(`before: ${l}`),
    });

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
    const rawAfter = await measureRawBandwidth(server.url, { ...rawOptions, progress: (l) => progress(`after: ${l}`) });
    const rawRuns = [...rawBefore.runs, ...rawAfter.runs];
    const raw = { totalBytes: rawOptions.totalBytes, chunkBytes, bytesPerSecond: median(rawRuns), runs: rawRuns };
    for (const c of cases) c.ratio = c.deliveryRate / raw.bytesPerSecond;
    const run = {
      machine,
      server: { url: server.url, maxPayload: serverMaxPayload, chunkBytes },
      warmup: args.warmup,
      raw,
      cases,
    };
    process.stdout.write(`${args.json ? toJson(run) : toText(run)}\n`);
    return 0;
  } finally {
    await shutdown();
  }
}

/** The f32 chunk size the ranks use: the collective's default chunkBytes, capped by max_payload. */
function collectiveChunkBytes(serverMaxPayload) {
  const defaults = natsCollectiveOptionsSchema.parse({ job: 'bench', generation: 0, rank: 0, worldSize: 1 });
  return chunkElementsFor(defaults.chunkBytes, serverMaxPayload, 'f32') * 4;
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

runBench({ name: 'allreduce', parse: parseBenchArgs, usage: USAGE, main, shutdown });
