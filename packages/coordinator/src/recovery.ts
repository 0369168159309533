// The one retry policy: every exchange with the workers that a lost or failing rank can break (a
// step, an evaluation, a snapshot, a checkpoint or model transfer, admitting newcomers) runs through
// it. After a failure it aborts the exchange on every rank, drops the workers whose heartbeats
// stopped, waits while fewer than workers.min remain and forms a new generation, then tries again.
// A failure during that recovery (another worker lost while the generation forms) is one more
// failed attempt, recovered from the same way; after MAX_ATTEMPTS the job fails saying why.
import type { EventEmitter } from 'node:events';
import type { JobSpec, Logger } from '@tfjs-ddp/common';
import type { ControlPlane } from './control.js';
import { JobFailedError, StepFailedError } from './errors.js';
import type { Generations } from './generations.js';
import type { Membership } from './membership.js';

/** Failed attempts of one exchange, recoveries that failed included, before the job fails. */
export const MAX_ATTEMPTS = 4;

export interface RecoveryOptions {
  spec: JobSpec;
  control: ControlPlane;
  membership: Membership;
  generations: Generations;
  log: Logger;
  /** Emits 'aborted' ({ step, reason }) for every attempt aborted on the ranks. */
  events: EventEmitter;
}

export class Recovery {
  /** Attempts aborted on every rank and redone (the summary's abortedSteps). */
  aborted = 0;

  constructor(private readonly o: RecoveryOptions) {}

  /**
   * Runs `attempt` until it succeeds, recovering after each StepFailedError. `step` is the step the
   * job stands at (a function where the attempt moves it: a window of steps commits as it goes). With
   * `ifApplied`, a recovery that finds `step` applied after all (every rank had finished it when one
   * failed to report) calls `ifApplied(last applied step)`: its result ends the run, or `undefined`
   * (steps of a window are left after the applied ones) tries the attempt again from the new step.
   */
  async run<T>(
    what: string | (() => string),
    step: number | (() => number),
    attempt: () => Promise<T>,
    ifApplied?: (applied: number) => T | undefined,
  ): Promise<T> {
    const at = typeof step === 'number' ? () => step : step;
    const label = typeof what === 'string' ? () => what : what;
    let failures = 0;
    let failedAt = -1;
    let failed: StepFailedError | undefined;
    for (;;) {
      try {
        if (failed) {
          const applied = await this.recover(failed, at());
          failed = undefined;
          if (ifApplied && applied >= at()) {
            const value = ifApplied(applied);
            if (value !== undefined) return value;
          }
        }
        return await attempt();
      } catch (err) {
        if (!(err instanceof StepFailedError)) throw err;
        // Attempts are counted per step: a window that moved on since its last failure starts again at one.
        if (at() !== failedAt) {
          failures = 0;
          failedAt = at();
        }
        failures += 1;
        // An exchange that fails again and again on live workers is broken, not unlucky: stop, saying why.
        if (failures >= MAX_ATTEMPTS) {
          throw new JobFailedError(`${label()} failed ${failures} times; the last time: ${err.message}`, {
            cause: err,
          });
        }
        failed = err;
      }
    }
  }

  /**
   * After a failed attempt: abort it on every rank, drop the workers that stopped heartbeating, wait
   * (up to faults.rejoinTimeoutMs) while fewer than workers.min remain, and form a new generation.
   * Returns the last step applied in the state the new generation took (`step` or later: it was
   * applied after all and must not be redone).
   */
  private async recover(err: StepFailedError, step: number): Promise<number> {
    const { control, membership, spec, log } = this.o;
    this.aborted += 1;
    this.o.events.emit('aborted', { step, reason: err.message });
    log.warn('step aborted; recovering', { step, reason: err.message });
    // Every operation id handed out so far belongs to the failed attempt or an earlier one.
    await control.broadcast({ type: 'abort', gen: membership.generation, reason: err.message, before: control.nextOp });
    // Give every member a heartbeat period to show it is alive before membership is decided.
    await new Promise((r) => setTimeout(r, Math.min(2_000, spec.faults.heartbeatTimeoutMs)));
    membership.dropLost();
    await membership.waitForWorkers(spec.faults.rejoinTimeoutMs, 'remained or rejoined');
    return this.o.generations.form(step, `recovery: ${err.message}`);
  }
}
