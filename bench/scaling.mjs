// `npm run bench:scaling`: samples/s of the Fashion-MNIST MLP and CNN with 1, 2 and 4 workers and
// the scaling efficiency, beside PyTorch DDP (gloo) training the same layers with the same global
// batch and optimizer, one compute thread per worker on both sides, one machine, one run.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from '@tfjs-ddp/common';
import { progress, runBench } from './runner.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { findTorch, runTorchRanks } from './peers/python.mjs';
import { USAGE, parseScalingArgs } from './scaling/args.mjs';
import { FASHION_DIR, checkFashion, fashionCount, fashionSource, writeFashionSubset } from './scaling/fashion.mjs';
import { trainOurs } from './scaling/ours.mjs';
import { toJson, toText } from './scaling/report.mjs';

const DDP = new URL('./peers/ddp_train.py', import.meta.url);
/** The example jobs' global batches (examples/jobs/fashion-*.yaml). */
const BATCH = { mlp: 128, cnn: 64 };

let server;
let dir;
async function shutdown() {
  killAllPeers();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** The job: one epoch over `samples` training samples, Adam 1e-3, nothing evaluated. */
function jobSpec(model, workers, train, stepsAhead) {
  return {
    name: `scaling-${model}-${workers}-${stepsAhead}`,
    model: { zoo: model },
    data: { train },
    optimizer: { type: 'adam', learningRate: 1e-3 },
    loss: 'sparseCategoricalCrossentropy',
    batchSize: BATCH[model],
    epochs: 1,
    seed: 42,
    // The hash check costs a step now and then; PyTorch DDP has none to match.
    hashCheckEvery: 0,
    timeouts: { stepMs: 300_000 },
    workers: { min: workers },
    stepsAhead,
  };
}

async function needs(args) {
  checkFashion(['train']);
  return args.torch ? findTorch() : undefined;
}

async function main(args, torch) {
  dir = await mkdtemp(join(os.tmpdir(), 'tfjs-ddp-scaling-'));
  server = await startNatsServer({ jetstream: false });
  const available = await fashionCount('train');
  const rows = [];
  for (const model of args.models) {
    const asked = args.samples[model];
    if (Number.isFinite(asked) && asked > available) {
      progress(`${model}: the training split holds ${available} samples, fewer than ${asked}; using all of them`);
    }
    const samples = Math.min(asked, available);
    const train = samples === available ? fashionSource('train') : await writeFashionSubset(dir, 'train', samples);
    const torchRate = new Map();
    const base = new Map();
    // The stepsAhead values alternate within each worker count, so a change in the machine's load
    // falls on both alike.
    for (const workers of args.workers) {
      for (const stepsAhead of args.stepsAhead) {
        progress(`${model}, ${workers} worker(s), ${samples} samples, stepsAhead ${stepsAhead}: ours`);
        const { summary } = await trainOurs({
          spec: jobSpec(model, workers, train, stepsAhead),
          backend: args.backend,
          workers,
          dir,
          nats: server.url,
          progress,
        });
        const phases = summary.history.phaseMeans.at(-1);
        progress(`  ${Math.round(summary.samplesPerSec)} samples/s`);
        // PyTorch once per worker count: it has no window to vary.
        if (torch && !torchRate.has(workers)) {
          progress(`  torch DDP, ${workers} rank(s)`);
          const t = await runTorchRanks(
            torch.python,
            DDP,
            workers,
            ['--model', model, '--data', FASHION_DIR, '--batch', `${BATCH[model]}`, '--train-samples', `${samples}`],
            { timeoutMs: 900_000 },
          );
          progress(`  ${Math.round(t.samplesPerSec)} samples/s`);
          torchRate.set(workers, t.samplesPerSec);
        }
        if (workers === 1) base.set(stepsAhead, summary.samplesPerSec);
        const t = torchRate.get(workers);
        rows.push({
          model,
          batch: BATCH[model],
          samples,
          workers,
          stepsAhead,
          ours: {
            samplesPerSec: summary.samplesPerSec,
            efficiency: summary.samplesPerSec / (workers * base.get(stepsAhead)),
            backends: [...new Set(Object.values(summary.backends))],
            phases,
          },
          torch: t === undefined ? undefined : { samplesPerSec: t, efficiency: t / (workers * torchRate.get(1)) },
        });
      }
    }
  }
  return { backend: args.backend, torch: torch?.torch, rows };
}

runBench({ name: 'scaling', usage: USAGE, parse: parseScalingArgs, needs, main, report: { toJson, toText }, shutdown });
