// Command-line flags of `npm run bench:tta`, parsed and checked once.
import { count, list, parseFlags, parseHookArg } from '../runner.mjs';

export const USAGE = `Usage: npm run bench:tta -- [options]

Wall time to a test accuracy on Fashion-MNIST with the MLP, for each communication hook, beside
PyTorch DDP (gloo) training the same layers with the same global batch and optimizer.

Options:
  --hooks LIST       hooks (default none,f16,bf16,topk:0.01,topk:0.1,powersgd:4):
                       none, f16, bf16, topk:RATIO, powersgd:RANK
  --target X         test accuracy to reach (default 0.85)
  --workers N        workers and torch ranks (default 2)
  --max-epochs N     give up after this many epochs (default 10)
  --json             print one JSON document instead of the table
  --help             print this help

Needs torch and numpy for the PyTorch side (pip install torch numpy); set TFJS_DDP_PYTHON to pick the interpreter.
`;

export function parseTtaArgs(argv) {
  const values = parseFlags(
    argv,
    {
      hooks: { type: 'string', default: 'none,f16,bf16,topk:0.01,topk:0.1,powersgd:4' },
      target: { type: 'string', default: '0.85' },
      workers: { type: 'string', default: '2' },
      'max-epochs': { type: 'string', default: '10' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    USAGE,
  );
  const target = Number(values.target);
  if (!(target > 0 && target < 1)) throw new Error(`--target: expected an accuracy in (0, 1), got "${values.target}"`);
  return {
    hooks: list(values.hooks, '--hooks', (s) => parseHookArg(s, '--hooks')),
    target,
    workers: count(values.workers, '--workers'),
    maxEpochs: count(values['max-epochs'], '--max-epochs'),
    json: values.json,
    help: values.help,
  };
}
