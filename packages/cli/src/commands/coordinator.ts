// `tfjs-ddp coordinator`: owns one job (membership, ranks, data plan, step clock, checkpoints).
import type { CommandModule } from 'yargs';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { runCoordinatorCommand } from '../run-roles.js';
import { NATS_GROUP, natsFlags } from './nats-flags.js';
import { jobFlag, wholeNumberFlag } from './shared-flags.js';

const flags = {
  job: jobFlag,
  'status-addr': {
    type: 'string',
    describe: 'HOST:PORT for /status, /metrics, /healthz and /readyz (port 0 picks a free one)',
  },
  trace: { type: 'string', describe: "write a Chrome trace of every rank's step phases to this file" },
  'min-workers': wholeNumberFlag(
    'min-workers',
    "workers to wait for before training starts (overrides the job's workers.min)",
  ),
  'max-workers': wholeNumberFlag('max-workers', "most workers admitted (overrides the job's workers.max)"),
  'k8s-job': {
    type: 'string',
    describe:
      "in Kubernetes: the coordinator's own Job, annotated with epoch, step and ETA (needs the service-account token and a Role allowing patch on it)",
  },
  'k8s-namespace': { type: 'string', describe: "the namespace of --k8s-job (in a pod: the pod's own)" },
  ...natsFlags,
} as const;

export function coordinatorCommand(ctx: CliContext): CommandModule {
  return {
    command: 'coordinator',
    describe: 'coordinate one training job over NATS',
    builder: (y) => withEnv(y.options(flags).group(Object.keys(natsFlags), NATS_GROUP), flags, ctx.env),
    handler: (argv) => ctx.run(() => runCoordinatorCommand(ctx, argv as never)),
  };
}
