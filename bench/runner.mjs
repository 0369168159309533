// The frame every benchmark runs in: its flags parsed (usage on a bad one, exit 2; --help), what it
// started released on SIGINT/SIGTERM (exit 130) and on failure (exit 1), and main's code as the exit
// code. Progress lines go to stderr, so stdout holds only the report.
import { parseArgs } from 'node:util';

export const progress = (line) => process.stderr.write(`bench: ${line}\n`);

/** node:util parseArgs for a benchmark: strict, no positionals, the usage appended to any error. */
export function parseFlags(argv, options, usage) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new Error(`${err.message}\n\n${usage}`, { cause: err });
  }
}

/**
 * @param {{ name: string, parse: (argv: string[]) => { help?: boolean }, usage: string,
 *           main: (args: any) => Promise<number>, shutdown: () => Promise<void> }} bench
 */
export function runBench({ name, parse, usage, main, shutdown }) {
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
    return main(args);
  };
  start().then(
    (code) => process.exit(code),
    async (err) => {
      // After a signal the peers die on purpose; their exits are not the failure to report.
      if (interrupted) return;
      process.stderr.write(`bench:${name} failed: ${err.stack ?? err}\n`);
      await shutdown();
      process.exit(1);
    },
  );
}
