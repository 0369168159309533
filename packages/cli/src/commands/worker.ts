// `tfjs-ddp worker`: one data-parallel replica; joins the job of --job over NATS.
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { runWorkerCommand } from '../run-roles.js';
import { NATS_GROUP, natsFlags } from './nats-flags.js';
import { backendFlag, jobFlag } from './shared-flags.js';

const flags = {
  job: jobFlag,
  'worker-id': { type: 'string', describe: 'stable id across restarts, e.g. the pod name (default: host-pid-random)' },
  backend: backendFlag,
  'metrics-addr': {
    type: 'string',
    describe: 'HOST:PORT for /metrics, /healthz and /readyz (port 0 picks a free one; the bound address is logged)',
  },
  ...natsFlags,
} as const;

export function workerCommand(ctx: CliContext): CommandModule {
  return {
    command: 'worker',
    describe: 'join a training job as a worker',
    builder: (y) => withEnv(y.options(flags).group(Object.keys(natsFlags), NATS_GROUP), flags, ctx.env),
    handler: (argv) => ctx.run(() => runWorkerCommand(ctx, argv as never)),
  };
}
