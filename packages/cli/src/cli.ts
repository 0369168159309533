// The tfjs-ddp command line: one yargs instance with a subcommand per role. runCli parses and
// runs a command line and resolves to the exit code, printing through the given context, so the
// bin and the tests drive it the same way.
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { bundleInfo } from '@tfjs-ddp/common';
import { commands, type CliContext } from './commands/index.js';
import type { Env } from './env.js';

function packageVersion(): string {
  const bundled = bundleInfo().version;
  if (bundled) return bundled;
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  return (pkg as { version: string }).version;
}

export function buildCli(ctx: CliContext): Argv {
  let cli = yargs()
    .scriptName('tfjs-ddp')
    .usage('$0 <command> [options]\n\nDistributed data-parallel training for TensorFlow.js over NATS.')
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .strict()
    .strictCommands()
    .demandCommand(1, 'name a command; the list is above')
    .recommendCommands()
    .wrap(100)
    .epilogue('Run "tfjs-ddp <command> --help" for the flags of a command and the variables that set them.');
  for (const command of commands(ctx)) cli = cli.command(command);
  return cli;
}

export interface RunOptions {
  env?: Env;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/** Runs one command line (without the node and script arguments) and resolves to its exit code. */
export async function runCli(args: readonly string[], options: RunOptions = {}): Promise<number> {
  let task: (() => Promise<number>) | undefined;
  let invalid = false;
  const ctx: CliContext = {
    env: options.env ?? process.env,
    stdout: options.stdout ?? ((text) => process.stdout.write(text)),
    stderr: options.stderr ?? ((text) => process.stderr.write(text)),
    run: (t) => {
      task = t;
    },
  };
  // With a parse callback yargs hands over its own output (help, version, usage errors) instead
  // of printing it and exiting, so it goes through the context like everything else.
  await buildCli(ctx).parseAsync([...args], {}, (err: Error | undefined, _argv: unknown, output: string) => {
    if (err) {
      invalid = true;
      ctx.stderr(`${output || err.message}\n`);
    } else if (output) {
      ctx.stdout(`${output}\n`);
    }
  });
  if (invalid) return 1;
  return task ? await task() : 0;
}
