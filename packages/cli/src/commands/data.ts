// `tfjs-ddp data put`: upload a data file into a NATS JetStream object store, so jobs can name it
// as nats-obj://BUCKET/NAME and pods need no shared volume.
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { runDataPut } from '../run-roles.js';
import { NATS_GROUP, natsFlags } from './nats-flags.js';

const putFlags = {
  bucket: { type: 'string', demandOption: true, describe: 'object store bucket (created when missing)' },
  name: { type: 'string', describe: 'object name (default: the file name)' },
  ...natsFlags,
} as const;

function putCommand(ctx: CliContext): CommandModule {
  return {
    command: 'put <file>',
    describe: 'upload FILE to a JetStream object store',
    builder: (y) =>
      withEnv(
        y
          .positional('file', { type: 'string', describe: 'the file to upload' })
          .options(putFlags)
          .group(Object.keys(natsFlags), NATS_GROUP),
        putFlags,
        ctx.env,
      ),
    handler: (argv) => ctx.run(() => runDataPut(ctx, argv as never)),
  };
}

export function dataCommand(ctx: CliContext): CommandModule {
  return {
    command: 'data',
    describe: 'manage data sets in NATS (data put)',
    builder: (y) =>
      y.usage('$0 data <command>').command(putCommand(ctx)).demandCommand(1, 'name a data command; the list is above'),
    handler: () => undefined,
  };
}
