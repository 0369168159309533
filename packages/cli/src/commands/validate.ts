// `tfjs-ddp validate`: checks a job spec and prints it resolved (defaults filled, paths made
// absolute), or every problem in it with exit code 1.
import { formatJobSpec, JobSpecError, loadJobSpec, specHash } from '@tfjs-ddp/common';
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { jobFlag } from './shared-flags.js';

const flags = {
  job: jobFlag,
  json: { type: 'boolean', default: false, describe: 'print the resolved spec as JSON instead of YAML' },
} as const;

export function validateCommand(ctx: CliContext): CommandModule<object, { job: string; json: boolean }> {
  return {
    command: 'validate',
    describe: 'check a job spec and print it resolved',
    builder: (y) => withEnv(y.options(flags), flags, ctx.env),
    handler: ({ job, json }) =>
      ctx.run(async () => {
        try {
          const spec = await loadJobSpec(job);
          ctx.stdout(formatJobSpec(spec, json ? 'json' : 'yaml'));
          ctx.stderr(`${job}: valid (specHash ${specHash(spec)})\n`);
          return 0;
        } catch (err) {
          if (err instanceof JobSpecError) {
            ctx.stderr(`${err.message}\n`);
            ctx.stderr(`${job}: ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'}\n`);
          } else {
            ctx.stderr(`tfjs-ddp validate: ${(err as Error).message}\n`);
          }
          return 1;
        }
      }),
  };
}
