// `tfjs-ddp local`: starts the local cluster, redraws a progress line while it trains, stops every
// process on Ctrl-C or failure, and prints where the model and summary went.
import { createLogger, type BackendRequest } from '@tfjs-ddp/common';
import { formatDuration, formatProgress, type ProgressEvent } from '@tfjs-ddp/coordinator';
import type { CliContext } from './commands/context.js';
import type { NatsFlagValues } from './commands/nats-flags.js';
import { natsOptionsFromFlags } from './commands/nats-flags.js';
import { startLocalCluster } from './local-cluster.js';

export interface LocalArgs extends NatsFlagValues {
  job: string;
  workers: number;
  backend: BackendRequest;
  output?: string;
  'status-addr'?: string;
  trace?: string;
  secure?: boolean;
}

export async function runLocal(ctx: CliContext, args: LocalArgs): Promise<number> {
  const log = createLogger('local');
  const tty = process.stderr.isTTY === true;
  let lastPrinted = 0;
  let lineShown = false;
  const clearLine = () => {
    if (tty && lineShown) ctx.stderr('\r\x1b[2K');
    lineShown = false;
  };
  let cluster;
  try {
    cluster = await startLocalCluster({
      job: args.job,
      workers: args.workers,
      nats: args.nats,
      natsOptions: natsOptionsFromFlags(args),
      backend: args.backend,
      output: args.output,
      statusAddr: args['status-addr'],
      trace: args.trace,
      secure: args.secure,
      log,
      onWorkerOutput: (w, line) => {
        clearLine();
        ctx.stderr(`[${w}] ${line}\n`);
      },
    });
  } catch (err) {
    ctx.stderr(`tfjs-ddp local: ${(err as Error).message}\n`);
    return 1;
  }
  cluster.events.on('progress', (p: ProgressEvent) => {
    const now = Date.now();
    if (tty) {
      ctx.stderr(`\r\x1b[2K${formatProgress(p)}`);
      lineShown = true;
    } else if (now - lastPrinted > 5_000 || p.step === p.stepsPerEpoch) {
      lastPrinted = now;
      ctx.stderr(`${formatProgress(p)}\n`);
    }
  });
  const onSignal = () => {
    clearLine();
    ctx.stderr('tfjs-ddp local: interrupted; stopping the cluster\n');
    void cluster.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await cluster.result();
    clearLine();
    const test = summary.test
      ? Object.entries(summary.test)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ')
      : 'no test set';
    ctx.stdout(
      `job ${summary.job} ${summary.status}: ${summary.epochs.length} epochs, ${summary.steps} steps, ` +
        `${Math.round(summary.samplesPerSec).toLocaleString('en-US')} samples/s on ${summary.worldSize} workers ` +
        `(${[...new Set(Object.values(summary.backends))].join(', ')}), wall ${formatDuration(summary.wallSeconds)}\n` +
        `test: ${test}\nmodel: ${summary.output}/model  summary: ${summary.output}/summary.json  report: ${summary.output}/report.html\n`,
    );
    return 0;
  } catch (err) {
    clearLine();
    ctx.stderr(`tfjs-ddp local: the job failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.stop();
  }
}
