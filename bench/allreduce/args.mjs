// Command-line flags of `npm run bench:allreduce`, parsed and checked once so the rest of the
// benchmark works with plain validated values.
import { count, list, parseFlags } from '../runner.mjs';

export const DTYPES = ['f32', 'f16', 'bf16'];

export const USAGE = `Usage: npm run bench:allreduce -- [options]

Benchmarks the NATS all-reduce with ranks as separate processes against raw NATS
publish->subscribe bandwidth measured through one server in the same run.

Options:
  --sizes LIST    buffer sizes in MiB of fp32 (default 1,16,64)
  --world LIST    world sizes, each >= 2 (default 2,4)
  --servers LIST  NATS servers per run, each >= 1: K servers are a local cluster with routes and
                  the shards are spread over them (default 1)
  --dtypes LIST   wire dtypes among f32,f16,bf16 (default f32,f16,bf16)
  --iters N       timed all-reduces per case (default 10, and 5 for sizes >= 64 MiB)
  --warmup N      untimed all-reduces before each case (default 2)
  --raw-mib N     MiB sent for the raw NATS bandwidth figure (default 256)
  --json          print one JSON document instead of the table
  --help          print this help
`;

/**
 * @typedef {object} BenchArgs
 * @property {number[]} sizesMiB
 * @property {number[]} worldSizes
 * @property {number[]} servers  cluster sizes K
 * @property {string[]} dtypes
 * @property {number | undefined} iters  undefined: the per-size default
 * @property {number} warmup
 * @property {number} rawMiB
 * @property {boolean} json
 * @property {boolean} help
 */

/** @param {string[]} argv  @returns {BenchArgs} */
export function parseBenchArgs(argv) {
  const values = parseFlags(
    argv,
    {
      sizes: { type: 'string', default: '1,16,64' },
      world: { type: 'string', default: '2,4' },
      servers: { type: 'string', default: '1' },
      dtypes: { type: 'string', default: DTYPES.join(',') },
      iters: { type: 'string' },
      warmup: { type: 'string', default: '2' },
      'raw-mib': { type: 'string', default: '256' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    USAGE,
  );
  return {
    sizesMiB: list(values.sizes, '--sizes', (s) => positiveNumber(s, '--sizes')),
    worldSizes: list(values.world, '--world', (s) => count(s, '--world', 2)),
    servers: list(values.servers, '--servers', (s) => count(s, '--servers', 1)),
    dtypes: list(values.dtypes, '--dtypes', (s) => {
      if (!DTYPES.includes(s)) throw new Error(`--dtypes: expected one of ${DTYPES.join(', ')}, got "${s}"`);
      return s;
    }),
    iters: values.iters === undefined ? undefined : count(values.iters, '--iters'),
    warmup: count(values.warmup, '--warmup', 0),
    rawMiB: positiveNumber(values['raw-mib'], '--raw-mib'),
    json: values.json,
    help: values.help,
  };
}

/** The timed iterations for one buffer size: 64 MiB cases take seconds each on small machines. */
export function itersFor(args, sizeMiB) {
  return args.iters ?? (sizeMiB >= 64 ? 5 : 10);
}

function positiveNumber(s, flag) {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got "${s}"`);
  return n;
}
