// `tfjs-ddp predict`: run a trained model over samples from a file.
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { backendFlag, modelFlag, moduleFlag } from './shared-flags.js';
import { runPredict } from '../predict.js';

const flags = {
  model: modelFlag,
  input: {
    type: 'string',
    demandOption: true,
    describe: 'samples to predict: a .csv, an IDX images file or a .json array',
  },
  output: { type: 'string', describe: 'file for the predictions (JSON); standard output when absent' },
  module: moduleFlag,
  backend: backendFlag,
} as const;

export function predictCommand(ctx: CliContext): CommandModule {
  return {
    command: 'predict',
    describe: 'predict with a trained model',
    builder: (y) => withEnv(y.options(flags), flags, ctx.env),
    handler: (argv) => ctx.run(() => runPredict(ctx, argv as never)),
  };
}
