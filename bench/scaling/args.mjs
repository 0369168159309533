// Command-line flags of `npm run bench:scaling`, parsed and checked once.
import { parseFlags } from '../runner.mjs';

export const USAGE = `Usage: npm run bench:scaling -- [options]

Samples/s of the Fashion-MNIST MLP and CNN with 1, 2 and 4 workers (local cluster, wasm backend,
one thread per worker) and the scaling efficiency, beside PyTorch DDP (gloo, one thread per rank)
training the same layers with the same global batch and optimizer, in one run.

Options:
  --models LIST        mlp, cnn (default mlp,cnn)
  --workers LIST       worker counts (default 1,2,4)
  --mlp-samples N      training samples per MLP run, one epoch (default 60000: all)
  --cnn-samples N      training samples per CNN run, one epoch (default 4096)
  --backend NAME       our workers' backend: wasm, cpu, webgpu, tensorflow or auto (default wasm)
  --without-torch      ours only, no PyTorch side (a GPU machine with Node alone, say)
  --json               print one JSON document instead of the table
  --help               print this help

Needs torch and numpy for the PyTorch side (pip install torch numpy) unless --without-torch; set
TFJS_DDP_PYTHON to pick the interpreter, FASHION_MNIST_DIR the dataset directory.
`;

const BACKENDS = ['wasm', 'cpu', 'webgpu', 'tensorflow', 'auto'];

export function parseScalingArgs(argv) {
  const values = parseFlags(
    argv,
    {
      models: { type: 'string', default: 'mlp,cnn' },
      workers: { type: 'string', default: '1,2,4' },
      'mlp-samples': { type: 'string', default: '60000' },
      'cnn-samples': { type: 'string', default: '4096' },
      backend: { type: 'string', default: 'wasm' },
      'without-torch': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    USAGE,
  );
  const models = values.models.split(',').map((m) => m.trim());
  for (const m of models) if (m !== 'mlp' && m !== 'cnn') throw new Error(`--models: expected mlp or cnn, got "${m}"`);
  const workers = values.workers.split(',').map((w) => count(w, '--workers'));
  if (!workers.includes(1))
    throw new Error('--workers: the list must include 1, the baseline of the scaling efficiency');
  if (!BACKENDS.includes(values.backend)) {
    throw new Error(`--backend: expected one of ${BACKENDS.join(', ')}, got "${values.backend}"`);
  }
  return {
    backend: values.backend,
    torch: !values['without-torch'],
    models: [...new Set(models)],
    workers: [...new Set(workers)].sort((a, b) => a - b),
    samples: { mlp: count(values['mlp-samples'], '--mlp-samples'), cnn: count(values['cnn-samples'], '--cnn-samples') },
    json: values.json,
    help: values.help,
  };
}

function count(s, flag) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a whole number >= 1, got "${s}"`);
  return n;
}
