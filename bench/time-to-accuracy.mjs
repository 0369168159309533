// `npm run bench:tta`: wall time to 0.85 test accuracy on Fashion-MNIST with the MLP and 2 workers,
// for each communication hook (allreduce.compression), beside PyTorch DDP (gloo) training the same
// layers with the same global batch and optimizer. The test set is the job's validation set, so it
// is evaluated after every epoch; a run stops at the first epoch that reaches the target.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { startNatsServer } from '@tfjs-ddp/common';
import { progress, runBench } from './runner.mjs';
import { killAllPeers } from './allreduce/peer.mjs';
import { findTorch, runTorchRanks } from './peers/python.mjs';
import { FASHION_DIR, checkFashion, fashionSource } from './scaling/fashion.mjs';
import { trainOurs } from './scaling/ours.mjs';
import { USAGE, parseTtaArgs } from './time-to-accuracy/args.mjs';
import { toJson, toText } from './time-to-accuracy/report.mjs';

const DDP = new URL('./peers/ddp_train.py', import.meta.url);
const BATCH = 128;

let server;
let dir;
async function shutdown() {
  killAllPeers();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}

async function needs() {
  checkFashion();
  return findTorch();
}

async function main(args, torch) {
  dir = await mkdtemp(join(os.tmpdir(), 'tfjs-ddp-tta-'));
  server = await startNatsServer({ jetstream: false });
  const rows = [];
  for (const hook of args.hooks) {
    progress(`${hook.name}: up to ${args.maxEpochs} epochs on ${args.workers} workers`);
    const spec = {
      name: `tta-${hook.name.replace(/[^A-Za-z0-9_-]/g, '-')}`,
      model: { zoo: 'mlp' },
      data: { train: fashionSource('train'), validation: fashionSource('t10k') },
      optimizer: { type: 'adam', learningRate: 1e-3 },
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
      batchSize: BATCH,
      epochs: args.maxEpochs,
      seed: 42,
      hashCheckEvery: 0,
      allreduce: { compression: hook.compression },
      workers: { min: args.workers },
    };
    let reached;
    let trainSeconds = 0;
    const { epochs } = await trainOurs({
      spec,
      workers: args.workers,
      dir,
      nats: server.url,
      progress,
      onEpoch: (e) => {
        trainSeconds += e.seconds;
        if (reached || e.validation.accuracy < args.target) return false;
        reached = { epoch: e.epoch, trainSeconds };
        return true;
      },
    });
    if (reached) reached.wallSeconds = epochs[reached.epoch - 1].atSeconds;
    rows.push({
      name: hook.name,
      compression: hook.compression,
      reached,
      accuracies: epochs.map((e) => e.validation.accuracy),
      samplesPerSec: epochs.reduce((s, e) => s + e.samples, 0) / epochs.reduce((s, e) => s + e.seconds, 0),
    });
  }
  progress(`PyTorch DDP: up to ${args.maxEpochs} epochs on ${args.workers} ranks`);
  const t = await runTorchRanks(
    torch.python,
    DDP,
    args.workers,
    [
      '--model',
      'mlp',
      '--data',
      FASHION_DIR,
      '--batch',
      `${BATCH}`,
      '--epochs',
      `${args.maxEpochs}`,
      '--target',
      `${args.target}`,
    ],
    { timeoutMs: 1_800_000 },
  );
  rows.push({
    name: 'torch DDP',
    reached: t.reached,
    accuracies: t.epochs.map((e) => e.testAccuracy),
    samplesPerSec: t.samplesPerSec,
  });
  return { torch: torch.torch, target: args.target, workers: args.workers, rows };
}

runBench({ name: 'tta', usage: USAGE, parse: parseTtaArgs, needs, main, report: { toJson, toText }, shutdown });
