// The subcommands of tfjs-ddp, in the order the help lists them.
import type { CommandModule } from 'yargs';
import type { CliContext } from './context.js';
import { coordinatorCommand } from './coordinator.js';
import { dataCommand } from './data.js';
import { evaluateCommand } from './evaluate.js';
import { generateCommand } from './generate.js';
import { localCommand } from './local.js';
import { natsAuthCommand } from './nats-auth.js';
import { predictCommand } from './predict.js';
import { validateCommand } from './validate.js';
import { workerCommand } from './worker.js';

export { natsOptionsFromFlags, type NatsFlagValues } from './nats-flags.js';
export type { CliContext } from './context.js';

export function commands(ctx: CliContext): CommandModule<object, never>[] {
  return [
    localCommand(ctx),
    coordinatorCommand(ctx),
    workerCommand(ctx),
    validateCommand(ctx),
    evaluateCommand(ctx),
    predictCommand(ctx),
    generateCommand(ctx),
    dataCommand(ctx),
    natsAuthCommand(ctx),
  ] as CommandModule<object, never>[];
}
