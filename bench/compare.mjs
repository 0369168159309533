// `npm run bench:compare`: our all-reduce (plain, half precision and compressed by the communication
// hooks) against torch.distributed's gloo all_reduce on the same machine in one run, world sizes 2
// and 4, with the raw NATS bandwidth measured through the same server as the limit line. Our side
// reuses bench:allreduce's rank processes, raw baseline and statistics. Progress goes to stderr,
// the report to stdout.
import { startNatsServer } from '@tfjs-ddp/common';
import { progress, runBench } from './runner.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { MAX_PAYLOAD, startRawBaseline } from './allreduce/raw-bandwidth.mjs';
import { startRankPool } from './allreduce/rank-pool.mjs';
import { deliveredBytes, median, summary } from './allreduce/stats.mjs';
import { USAGE, itersFor, parseCompareArgs } from './compare/args.mjs';
import { withCpu } from './compare/cpu.mjs';
import { sizeLabel, toJson, toText } from './compare/report.mjs';
import { findTorch, runTorchRanks } from './peers/python.mjs';

const GLOO = new URL('./peers/gloo_allreduce.py', import.meta.url);

let server;
async function shutdown() {
  killAllPeers();
  await server?.stop();
}

/** PowerSGD needs matrices: the buffer as one cols-wide matrix, cols the power of two nearest √L (plus a vector for the rest). */
function matrixShapes(floats) {
  const cols = 2 ** Math.floor(Math.log2(floats) / 2);
  const rows = Math.floor(floats / cols);
  return floats - rows * cols ? [[rows, cols], [floats - rows * cols]] : [[rows, cols]];
}

async function main(args, torch) {
  server = await startNatsServer({ maxPayload: MAX_PAYLOAD, jetstream: false });
  progress(`nats-server at ${server.url}; torch ${torch.torch} (${torch.python})`);
  const baseline = await startRawBaseline(server.url, args.rawMiB, progress);

  const measured = [];
  const gloo = new Map();
  for (const world of args.worldSizes) {
    progress(`starting ${world} rank processes`);
    const pool = await startRankPool(server.url, world);
    try {
      for (const sizeKiB of args.sizesKiB) {
        const floats = (sizeKiB * 1024) / 4;
        for (const v of args.variants) {
          const iters = itersFor(args, sizeKiB);
          progress(`N=${world} ${sizeLabel(sizeKiB)} ${v.name}: ${args.warmup} warm-up + ${iters} timed`);
          const { result: r, cpu } = await withCpu(server.pid, () =>
            pool.runCase({
              floats,
              dtype: v.dtype,
              hook: v.hook,
              shapes: v.hook?.type === 'powersgd' ? matrixShapes(floats) : [[floats]],
              warmup: args.warmup,
              iters,
              timeoutMs: 900_000,
            }),
          );
          measured.push({ world, sizeKiB, variant: v.name, fp32Bytes: floats * 4, iters, r, cpu });
          progress(`  median ${median(r.ms).toFixed(1)} ms`);
        }
      }
    } finally {
      await pool.stop();
    }
    progress(`gloo all_reduce with ${world} ranks`);
    const floats = args.sizesKiB.map((k) => (k * 1024) / 4);
    const result = await runTorchRanks(
      torch.python,
      GLOO,
      world,
      [
        '--floats',
        floats.join(','),
        '--iters',
        args.sizesKiB.map((k) => itersFor(args, k)).join(','),
        '--warmup',
        `${args.warmup}`,
      ],
      { timeoutMs: 900_000 },
    );
    for (const c of result.cases) gloo.set(`${world}/${c.floats}`, summary(c.ms));
  }
  const raw = await baseline.finish();

  const order = (c) => [c.world, c.sizeKiB, args.variants.findIndex((v) => v.name === c.variant)];
  measured.sort((a, b) => order(a).reduce((d, x, i) => d || x - order(b)[i], 0));
  const cases = measured.map(({ world, sizeKiB, variant, fp32Bytes, iters, r, cpu }) => {
    const timeMs = summary(r.ms);
    const glooMs = gloo.get(`${world}/${fp32Bytes / 4}`);
    const delivered = median(r.deliveredBytes);
    const deliveryRate = delivered / (timeMs.median / 1000);
    return {
      world,
      sizeKiB,
      variant,
      iters,
      timeMs,
      glooMs,
      ratio: timeMs.median / glooMs.median,
      deliveredBytes: delivered,
      deliveryRate,
      rawRatio: deliveryRate / raw.bytesPerSecond,
      limitMs: variant === 'f32' ? (deliveredBytes(fp32Bytes, world, 'f32') / raw.bytesPerSecond) * 1000 : undefined,
      cpu: cpu && {
        serverSecondsPerOp: cpu.server / (args.warmup + iters),
        ranksSecondsPerOp: cpu.ranks / (args.warmup + iters),
        coresBusy: (cpu.server + cpu.ranks) / cpu.wall,
      },
    };
  });
  return {
    torch: torch.torch,
    server: { maxPayload: baseline.serverMaxPayload, chunkBytes: baseline.chunkBytes },
    warmup: args.warmup,
    raw,
    cases,
    verdicts: verdicts(cases),
  };
}

/** The two figures the performance goals are stated in, read off the largest 4-rank case. */
function verdicts(cases) {
  const at = cases.filter((c) => c.world === 4 && c.sizeKiB === 65536);
  const out = [];
  const f32 = at.find((c) => c.variant === 'f32');
  if (f32) {
    out.push({
      claim: 'at 4 ranks and 64 MiB our f32 delivery rate is at least 0.8 x raw NATS',
      holds: f32.rawRatio >= 0.8,
      detail: `${f32.rawRatio.toFixed(2)} x`,
    });
  }
  const compressed = at.filter((c) => /^(topk|powersgd)/.test(c.variant));
  if (compressed.length) {
    const best = compressed.reduce((a, b) => (a.ratio <= b.ratio ? a : b));
    out.push({
      claim: "at 4 ranks and 64 MiB a top-k or PowerSGD all-reduce of ours takes less than gloo's f32",
      holds: best.ratio < 1,
      detail: `best ${best.variant}: ${best.timeMs.median.toFixed(1)} ms vs ${best.glooMs.median.toFixed(1)} ms`,
    });
  }
  return out;
}

runBench({
  name: 'compare',
  usage: USAGE,
  parse: parseCompareArgs,
  needs: () => findTorch(),
  main,
  report: { toJson, toText },
  shutdown,
});
