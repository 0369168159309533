// optimizer.shard (ZeRO stage 1) against the unsharded optimizer, one invocation: the MLP and the
// transformer LM with Adam, at each worker count, sharded and not, on a local cluster (worker
// processes, so each one's tensor memory is its own). Per run: the largest tensor bytes any worker
// held after a step (the same point in both modes), the same job with plain SGD unsharded
// as the baseline without optimizer slots, and the mean apply and all-reduce seconds per step.
//
//   npm run bench:zero -- [--workers 2,4] [--models mlp,lm] [--epochs 2] [--json FILE]
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNatsServer } from '@tfjs-ddp/common';
import { describeMachine } from './allreduce/machine.mjs';
import { writeFashionSubset } from './scaling/fashion.mjs';
import { trainOurs } from './scaling/ours.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2,4' },
    models: { type: 'string', default: 'mlp,lm' },
    epochs: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
const workerCounts = values.workers.split(',').map(Number);
const models = values.models.split(',');
const epochs = Number(values.epochs);

const WORDS = 'the of and to in a that for public our we have is be by this with it not which as are'.split(' ');

async function corpus(dir) {
  let s = 7;
  const next = (n) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % n;
  let text = '';
  while (text.length < 6000)
    text += `${Array.from({ length: 4 + next(8) }, () => WORDS[next(WORDS.length)]).join(' ')}. `;
  const file = join(dir, 'corpus.txt');
  await writeFile(file, text);
  return file;
}

function job(model, name, optimizer, { text, fashion }) {
  const common = { name, epochs, seed: 3, hashCheckEvery: 0, workers: { min: 1, max: 8 } };
  if (model === 'mlp') {
    return {
      ...common,
      // The Fashion-MNIST MLP: 784 -> 128 -> 10, 101,770 parameters.
      model: { zoo: 'mlp' },
      data: { train: fashion },
      loss: 'sparseCategoricalCrossentropy',
      batchSize: 64,
      optimizer,
    };
  }
  return {
    ...common,
    model: { zoo: 'transformer-lm', params: { layers: 2, heads: 4, dModel: 64 } },
    data: { train: { type: 'text', files: [text], context: 32 } },
    batchSize: 32,
    optimizer: { ...optimizer, clipNorm: 1, weightDecay: 0.01 },
  };
}

function measure(summary) {
  const peak = Math.max(...Object.values(summary.memory).map((m) => m.tensorBytes));
  const means = summary.history.phaseMeans;
  const mean = (phase) => means.reduce((a, m) => a + m[phase], 0) / means.length;
  return { peakTensorBytes: peak, applySeconds: mean('apply'), allreduceSeconds: mean('allreduce') };
}

const dir = await mkdtemp(join(os.tmpdir(), 'bench-zero-'));
const server = await startNatsServer({ jetstream: false });
const load = os.loadavg();
const rows = [];
try {
  const data = { text: await corpus(dir), fashion: await writeFashionSubset(dir, 'train', 2000) };
  for (const model of models) {
    for (const workers of workerCounts) {
      const run = async (label, optimizer) => {
        const name = `zero-${model}-${workers}-${label}`;
        const { summary } = await trainOurs({
          spec: job(model, name, optimizer, data),
          workers,
          dir,
          nats: server.url,
        });
        return measure(summary);
      };
      const baseline = await run('sgd', { type: 'sgd', learningRate: 0.01 });
      for (const shard of [false, true]) {
        const m = await run(shard ? 'sharded' : 'plain', { type: 'adam', learningRate: 0.001, shard });
        rows.push({ model, workers, shard, ...m, optimizerBytes: m.peakTensorBytes - baseline.peakTensorBytes });
        console.error(`${model} ${workers} workers ${shard ? 'sharded' : 'unsharded'}: ${JSON.stringify(m)}`);
      }
    }
  }
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}

const machine = await describeMachine();
const kib = (b) => (b / 1024).toFixed(1);
const ms = (s) => (s * 1000).toFixed(2);
console.log(
  `${machine.date}, ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average before ${load.map((l) => l.toFixed(2)).join(' ')}\n`,
);
console.log(
  '| model | workers | optimizer | peak tensor KiB/worker | optimizer KiB/worker | vs unsharded | apply ms/step | all-reduce ms/step |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const plain = rows.find((p) => p.model === r.model && p.workers === r.workers && !p.shard);
  console.log(
    `| ${r.model} | ${r.workers} | adam${r.shard ? ', sharded' : ''} | ${kib(r.peakTensorBytes)} | ${kib(r.optimizerBytes)} | ` +
      `${(r.optimizerBytes / plain.optimizerBytes).toFixed(2)} | ${ms(r.applySeconds)} | ${ms(r.allreduceSeconds)} |`,
  );
}
if (values.json) await writeFile(values.json, JSON.stringify({ machine, load, rows }, null, 2));
