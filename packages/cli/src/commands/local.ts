// `tfjs-ddp local`: the whole cluster on one machine (a nats-server, the coordinator and N
// worker processes), for development and for the integration tests.
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { runLocal } from '../run-local.js';
import { NATS_GROUP, natsFlags } from './nats-flags.js';
import { backendFlag, jobFlag, wholeNumberFlag } from './shared-flags.js';

const flags = {
  job: jobFlag,
  workers: wholeNumberFlag('workers', 'worker processes to start', 2),
  backend: backendFlag,
  output: { type: 'string', describe: "directory for the trained model and summary.json (overrides the job's output)" },
  'status-addr': {
    type: 'string',
    describe: "HOST:PORT for the coordinator's /status, /metrics, /healthz and /readyz (port 0 picks a free one)",
  },
  trace: { type: 'string', describe: "write a Chrome trace of every rank's step phases to this file" },
  secure: {
    type: 'boolean',
    default: false,
    describe:
      'start the nats-server with role users: only the coordinator may publish commands, and each worker gets its own user that may send chunks only under its own worker id (not with --nats)',
  },
  ...natsFlags,
  nats: { type: 'string', describe: 'use this NATS server instead of starting a private nats-server' },
} as const;

export function localCommand(ctx: CliContext): CommandModule {
  return {
    command: 'local',
    describe: 'run a nats-server, the coordinator and N workers on this machine',
    builder: (y) =>
      withEnv(y.options(flags).group(Object.keys(natsFlags), NATS_GROUP), flags, ctx.env).example(
        '$0 local --workers 4 --job examples/jobs/fashion-mlp.yaml',
        'train Fashion-MNIST with 4 workers',
      ),
    handler: (argv) => ctx.run(() => runLocal(ctx, argv as never)),
  };
}
