// Command-line flags of `npm run bench:scaling`, parsed and checked once.
import { BACKEND_REQUESTS } from '@tfjs-ddp/common';
import { count, list, parseFlags } from '../runner.mjs';

export const USAGE = `Usage: npm run bench:scaling -- [options]

Samples/s of the Fashion-MNIST MLP and CNN with 1, 2 and 4 workers (local cluster, wasm backend,
one thread per worker) and the scaling efficiency, beside PyTorch DDP (gloo, one thread per rank)
training the same layers with the same global batch and optimizer, in one run.

Options:
  --models LIST        mlp, cnn (default mlp,cnn)
  --workers LIST       worker counts (default 1,2,4)
  --mlp-samples N      training samples per MLP run, one epoch (default: the whole split)
  --cnn-samples N      training samples per CNN run, one epoch (default 4096)
  --backend NAME       our workers' backend: wasm, cpu, webgpu, tensorflow or auto (default wasm)
  --steps-ahead LIST   the job's stepsAhead, one run of ours per value (default 4; 1 is lockstep:
                       each step waits for every report of the one before, as before stepsAhead)
  --without-torch      ours only, no PyTorch side (a GPU machine with Node alone, say)
  --json               print one JSON document instead of the table
  --help               print this help

Needs torch and numpy for the PyTorch side (pip install torch numpy) unless --without-torch; set
TFJS_DDP_PYTHON to pick the interpreter, FASHION_MNIST_DIR the dataset directory.
`;

export function parseScalingArgs(argv) {
  const values = parseFlags(
    argv,
    {
      models: { type: 'string', default: 'mlp,cnn' },
      workers: { type: 'string', default: '1,2,4' },
      'mlp-samples': { type: 'string' },
      'cnn-samples': { type: 'string', default: '4096' },
      backend: { type: 'string', default: 'wasm' },
      'steps-ahead': { type: 'string', default: '4' },
      'without-torch': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    USAGE,
  );
  const models = list(values.models, '--models', (m) => {
    if (m !== 'mlp' && m !== 'cnn') throw new Error(`--models: expected mlp or cnn, got "${m}"`);
    return m;
  });
  const workers = list(values.workers, '--workers', (w) => count(w, '--workers'));
  if (!workers.includes(1))
    throw new Error('--workers: the list must include 1, the baseline of the scaling efficiency');
  if (!BACKEND_REQUESTS.includes(values.backend)) {
    throw new Error(`--backend: expected one of ${BACKEND_REQUESTS.join(', ')}, got "${values.backend}"`);
  }
  const stepsAhead = list(values['steps-ahead'], '--steps-ahead', (n) => {
    const v = count(n, '--steps-ahead');
    if (v > 64) throw new Error(`--steps-ahead: at most 64 (the job spec's bound), got ${v}`);
    return v;
  });
  const mlpSamples = values['mlp-samples'];
  return {
    backend: values.backend,
    torch: !values['without-torch'],
    models,
    workers: workers.sort((a, b) => a - b),
    stepsAhead,
    // Infinity: every sample the split holds.
    samples: {
      mlp: mlpSamples === undefined ? Infinity : count(mlpSamples, '--mlp-samples'),
      cnn: count(values['cnn-samples'], '--cnn-samples'),
    },
    json: values.json,
    help: values.help,
  };
}
