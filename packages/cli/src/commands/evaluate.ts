// `tfjs-ddp evaluate`: the loss and metrics of a trained model on a job's test set.
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { runEvaluate } from '../predict.js';
import { backendFlag, jobFlag, modelFlag, moduleFlag } from './shared-flags.js';

const flags = {
  model: modelFlag,
  job: jobFlag,
  module: { ...moduleFlag, describe: `${moduleFlag.describe}; default: the job file's model.module` },
  backend: backendFlag,
} as const;

export function evaluateCommand(ctx: CliContext): CommandModule {
  return {
    command: 'evaluate',
    describe: "evaluate a trained model on a job's test set",
    builder: (y) => withEnv(y.options(flags), flags, ctx.env),
    handler: (argv) => ctx.run(() => runEvaluate(ctx, argv as never)),
  };
}
