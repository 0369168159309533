// `npm run bench:compare`: our all-reduce (plain, half precision and compressed by the communication
// hooks) against torch.distributed's gloo all_reduce on the same machine in one run, world sizes 2
// and 4, with the raw NATS bandwidth measured through the same server as the limit line. Our side
// reuses bench:allreduce's rank processes, raw baseline and statistics. Progress goes to stderr,
// the report to stdout.
import os from 'node:os';
import {
  chunkElementsFor,
  connectNats,
  maxPayload,
  natsCollectiveOptionsSchema,
  startNatsServer,
} from '@tfjs-ddp/common';
import { progress, runBench } from './runner.mjs';
import { describeMachine } from './allreduce/machine.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { measureRawBandwidth } from './allreduce/raw-bandwidth.mjs';
import { startRankPool } from './allreduce/rank-pool.mjs';
import { median, summary } from './allreduce/stats.mjs';
import { USAGE, itersFor, parseCompareArgs } from './compare/args.mjs';
import { withCpu } from './compare/cpu.mjs';
import { startHookPool } from './compare/hook-pool.mjs';
import { sizeLabel, toJson, toText } from './compare/report.mjs';
import { findTorch, killPythonPeers, runTorchRanks } from './peers/python.mjs';

const MIB = 2 ** 20;
const MAX_PAYLOAD = 8 * MIB;
const RAW_REPEATS_EACH_SIDE = 3;
const GLOO = new URL('./peers/gloo_allreduce.py', import.meta.url);

let server;
async function shutdown() {
  killAllPeers();
  killPythonPeers();
  await server?.stop();
}

/** PowerSGD needs matrices: the buffer as one cols-wide matrix, cols the power of two nearest √L (plus a vector for the rest). */
function matrixShapes(floats) {
  const cols = 2 ** Math.floor(Math.log2(floats) / 2);
  const rows = Math.floor(floats / cols);
  return floats - rows * cols ? [[rows, cols], [floats - rows * cols]] : [[rows, cols]];
}

async function main(args) {
  let torch;
  try {
    torch = await findTorch();
  } catch (err) {
    process.stderr.write(`bench:compare cannot run the gloo baseline: ${err.message}\n`);
    return 3;
  }
  const machine = await describeMachine();
  const loadBefore = os.loadavg()[0];
  server = await startNatsServer({ maxPayload: MAX_PAYLOAD, jetstream: false });
  progress(`nats-server at ${server.url}; torch ${torch.torch} (${torch.python})`);
  try {
    const probe = await connectNats({ servers: [server.url], name: 'bench-probe' });
    const serverMaxPayload = maxPayload(probe);
    await probe.close();
    const defaults = natsCollectiveOptionsSchema.parse({ job: 'bench', generation: 0, rank: 0, worldSize: 1 });
    const chunkBytes = chunkElementsFor(defaults.chunkBytes, serverMaxPayload, 'f32') * 4;
    const rawOptions = { totalBytes: args.rawMiB * MIB, chunkBytes, repeats: RAW_REPEATS_EACH_SIDE };
    const rawBefore = await measureRawBandwidth(server.url, {
      ...rawOptions,
      progress: (l) => progress(`before: ${l}`),
    });

    const measured = [];
    const gloo = new Map();
    for (const world of args.worldSizes) {
      const plain = args.variants.filter((v) => v.dtype);
      const hooks = args.variants.filter((v) => v.hook);
      for (const [kind, variants] of [
        ['plain', plain],
        ['hooks', hooks],
      ]) {
        if (variants.length === 0) continue;
        progress(`starting ${world} rank processes (${kind})`);
        const pool = kind === 'plain' ? await startRankPool(server.url, world) : await startHookPool(server.url, world);
        try {
          for (const sizeKiB of args.sizesKiB) {
            const floats = (sizeKiB * 1024) / 4;
            for (const v of variants) {
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
        { timeoutMs: 900_000, progress },
      );
      for (const c of result.cases) gloo.set(`${world}/${c.floats}`, summary(c.ms));
    }
    const rawAfter = await measureRawBandwidth(server.url, { ...rawOptions, progress: (l) => progress(`after: ${l}`) });
    const rawRuns = [...rawBefore.runs, ...rawAfter.runs];
    const raw = { totalBytes: rawOptions.totalBytes, chunkBytes, bytesPerSecond: median(rawRuns), runs: rawRuns };

    const order = (c) => [c.world, c.sizeKiB, args.variants.findIndex((v) => v.name === c.variant)];
    measured.sort((a, b) => order(a).reduce((d, x, i) => d || x - order(b)[i], 0));
    const cases = measured.map(({ world, sizeKiB, variant, fp32Bytes, iters, r, cpu }) => {
      const timeMs = summary(r.ms);
      const glooMs = gloo.get(`${world}/${fp32Bytes / 4}`);
      const deliveredBytes = median(r.deliveredBytes);
      const deliveryRate = deliveredBytes / (timeMs.median / 1000);
      return {
        world,
        sizeKiB,
        variant,
        iters,
        timeMs,
        glooMs,
        ratio: timeMs.median / glooMs.median,
        deliveredBytes,
        deliveryRate,
        rawRatio: deliveryRate / raw.bytesPerSecond,
        limitMs: variant === 'f32' ? ((2 * (world - 1) * fp32Bytes) / raw.bytesPerSecond) * 1000 : undefined,
        cpu: cpu && {
          serverSecondsPerOp: cpu.server / (args.warmup + iters),
          ranksSecondsPerOp: cpu.ranks / (args.warmup + iters),
          coresBusy: (cpu.server + cpu.ranks) / cpu.wall,
        },
      };
    });
    const run = {
      machine,
      load: { before: loadBefore, after: os.loadavg()[0] },
      torch: torch.torch,
      server: { maxPayload: serverMaxPayload, chunkBytes },
      warmup: args.warmup,
      raw,
      cases,
      verdicts: verdicts(cases),
    };
    process.stdout.write(`${args.json ? toJson(run) : toText(run)}\n`);
    return 0;
  } finally {
    await shutdown();
  }
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

runBench({ name: 'compare', parse: parseCompareArgs, usage: USAGE, main, shutdown });
