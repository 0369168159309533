// Command-line flags of `npm run bench:compare`, parsed and checked once.
import { count, list, parseFlags, parseHookArg } from '../runner.mjs';

export const USAGE = `Usage: npm run bench:compare -- [options]

Times our all-reduce (ranks as processes over one nats-server) and torch.distributed's gloo
all_reduce on the same machine in one run, with the raw NATS bandwidth of the same run as the limit.

Options:
  --sizes LIST    buffer sizes in KiB of fp32 (default 64,4096,16384,65536: 64 KiB, 4, 16, 64 MiB)
  --world LIST    world sizes, each >= 2 (default 2,4)
  --ours LIST     our variants (default f32,f16,bf16,topk:0.01,topk:0.001,powersgd:4):
                    f32, f16, bf16          the plain all-reduce with that wire format
                    topk:RATIO              top-k with error feedback, k = RATIO of the elements
                    powersgd:RANK           PowerSGD at that rank (the buffer as one square-ish matrix)
  --iters N       timed operations per case (default: 50 up to 1 MiB, 10 up to 16 MiB, 5 above)
  --warmup N      untimed operations before each case (default 3)
  --raw-mib N     MiB sent for the raw NATS bandwidth figure (default 256)
  --json          print one JSON document instead of the table
  --help          print this help

Needs torch and numpy for the gloo side (pip install torch numpy); set TFJS_DDP_PYTHON to pick the interpreter.
`;

const DTYPES = ['f32', 'f16', 'bf16'];

/** @param {string[]} argv */
export function parseCompareArgs(argv) {
  const values = parseFlags(
    argv,
    {
      sizes: { type: 'string', default: '64,4096,16384,65536' },
      world: { type: 'string', default: '2,4' },
      ours: { type: 'string', default: 'f32,f16,bf16,topk:0.01,topk:0.001,powersgd:4' },
      iters: { type: 'string' },
      warmup: { type: 'string', default: '3' },
      'raw-mib': { type: 'string', default: '256' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    USAGE,
  );
  return {
    sizesKiB: list(values.sizes, '--sizes', (s) => count(s, '--sizes')),
    worldSizes: list(values.world, '--world', (s) => count(s, '--world', 2)),
    variants: list(values.ours, '--ours', parseVariant),
    iters: values.iters === undefined ? undefined : count(values.iters, '--iters'),
    warmup: count(values.warmup, '--warmup', 0),
    rawMiB: count(values['raw-mib'], '--raw-mib', 1),
    json: values.json,
    help: values.help,
  };
}

/** A variant's name and what runs it: a wire dtype for the plain all-reduce, or a compressing hook's spec. */
function parseVariant(s) {
  if (DTYPES.includes(s)) return { name: s, dtype: s };
  if (!/^(topk|powersgd):/.test(s)) {
    throw new Error(`--ours: expected f32, f16, bf16, topk:RATIO or powersgd:RANK, got "${s}"`);
  }
  return { name: s, hook: parseHookArg(s, '--ours').compression };
}

/** Timed operations for a buffer of `kib` KiB: small ones are quick and noisy, so more of them. */
export function itersFor(args, kib) {
  return args.iters ?? (kib <= 1024 ? 50 : kib <= 16384 ? 10 : 5);
}
