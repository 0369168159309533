// The frame every benchmark runs in: its flags parsed (usage on a bad one, exit 2; --help), what it
// needs checked (exit 3 saying what is missing), the machine and its load recorded around the run,
// the report printed (table or --json), what it started released once, on success, failure (exit 1)
// and SIGINT/SIGTERM (exit 130). Progress lines go to stderr, so stdout holds only the report. Also
// the flag helpers the benchmarks' args modules share.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { commHookSpecSchema, formatIssues } from '@tfjs-ddp/common';
import { describeMachine } from './allreduce/machine.mjs';

export const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/**
 * @param {{ name: string, usage: string,
 *           parse: (argv: string[]) => { help?: boolean, json?: boolean },
 *           needs?: (args: any) => Promise<any>,
 *           main: (args: any, needs: any) => Promise<object>,
 *           report: { toJson: (run: object) => string, toText: (run: object) => string },
 *           shutdown: () => Promise<void> }} bench
 *   `needs` checks what the run requires (the dataset, torch) and resolves with what it found, or
 *   throws saying what is missing; `main` resolves with the run's figures, to which the machine and
 *   the load average before and after are added for the report; `shutdown` releases whatever main
 *   started and may be called while main is still running (on a signal).
 */
export function runBench({ name, usage, parse, needs, main, report, shutdown }) {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      interrupted = true;
      progress(`${signal} received, stopping`);
      void shutdown().finally(() => process.exit(130));
    });
  }
  const start = async () => {
    let args;
    try {
      args = parse(process.argv.slice(2));
    } catch (err) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (args.help) {
      process.stdout.write(usage);
      return 0;
    }
    let found;
    try {
      found = await needs?.(args);
    } catch (err) {
      process.stderr.write(`bench:${name} cannot run: ${err.message}\n`);
      return 3;
    }
    try {
      const machine = await describeMachine();
      const loadBefore = os.loadavg()[0];
      const figures = await main(args, found);
      const run = { machine, load: { before: loadBefore, after: os.loadavg()[0] }, ...figures };
      process.stdout.write(`${args.json ? report.toJson(run) : report.toText(run)}\n`);
      return 0;
    } finally {
      await shutdown();
    }
  };
  start().then(
    (code) => process.exit(code),
    (err) => {
      // After a signal the peers die on purpose; their exits are not the failure to report.
      if (interrupted) return;
      process.stderr.write(`bench:${name} failed: ${err.stack ?? err}\n`);
      process.exit(1);
    },
  );
}

/** node:util parseArgs for a benchmark: strict, no positionals, the usage appended to any error. */
export function parseFlags(argv, options, usage) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new Error(`${err.message}\n\n${usage}`, { cause: err });
  }
}

/** A comma-separated flag value, each item parsed; repeats are dropped (by text, and by value for numbers). */
export function list(text, flag, parse) {
  const items = [
    ...new Set(
      text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (items.length === 0) throw new Error(`${flag}: expected a comma-separated list, got "${text}"`);
  return [...new Set(items.map(parse))];
}

/** A whole number of at least `min`. */
export function count(s, flag, min = 1) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected a whole number >= ${min}, got "${s}"`);
  return n;
}

const HOOK_SETTING = { topk: 'ratio', powersgd: 'rank' };
const HOOK_FORMS = 'none, f16, bf16, topk:RATIO or powersgd:RANK';

/**
 * A communication hook written as on the command line (none, f16, bf16, topk:RATIO, powersgd:RANK),
 * validated by the job spec's own schema, so a benchmark runs only what a job could ask for.
 * @returns {{ name: string, compression: object }}  the text as given and the parsed hook spec
 */
export function parseHookArg(s, flag) {
  const [type, value, ...rest] = s.split(':');
  const setting = HOOK_SETTING[type];
  if (rest.length > 0 || (value === undefined) !== (setting === undefined)) {
    throw new Error(`${flag}: expected ${HOOK_FORMS}, got "${s}"`);
  }
  const parsed = commHookSpecSchema.safeParse(setting ? { type, [setting]: Number(value) } : { type });
  if (!parsed.success) {
    throw new Error(`${flag}: "${s}" is not a hook a job accepts (${formatIssues(parsed.error, 'hook')})`);
  }
  return { name: s, compression: parsed.data };
}
