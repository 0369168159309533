// The step clock: for each step of an epoch, send the step (every member's slice of the next global
// batch, the learning rate, whether to hash), collect every rank's report under the retry policy,
// commit the step's samples in the data plan, and announce progress. Up to `stepsAhead` steps are
// sent before the first of them is acknowledged, so a worker starts its next step as soon as its
// update is applied rather than after a round trip to the coordinator; reports are taken in step
// order, and a step counts only once every rank reported it (or a recovery found it applied). The
// window drains at an epoch end (evaluation follows), at a checkpoint and before newcomers are
// admitted, so those happen between two steps on every rank. Checkpoints fall due every
// checkpoint.everySteps steps within an epoch.
import type { EventEmitter } from 'node:events';
import {
  COMM_HOOK_OPS,
  learningRateAt,
  type DataPlan,
  type JobSpec,
  type PlannedStep,
  type Report,
} from '@tfjs-ddp/common';
import { commitRange } from './committed-ranges.js';
import { StepFailedError } from './errors.js';
import type { ControlPlane } from './control.js';
import { checkReplicasEqual, type Generations } from './generations.js';
import type { Membership } from './membership.js';
import { Throughput, formatProgress, type ProgressEvent } from './progress.js';
import type { Recovery } from './recovery.js';
import type { StepStats } from './step-stats.js';
import type { TrainingProgress } from './summary.js';
import type { StepEvent } from './timeline/run-recorder.js';

type StepDone = Extract<Report, { type: 'stepDone' }>;

export interface StepDriverOptions {
  spec: JobSpec;
  plan: DataPlan;
  progress: TrainingProgress;
  stats: StepStats;
  control: ControlPlane;
  membership: Membership;
  generations: Generations;
  recovery: Recovery;
  /** Saves a checkpoint at the given step (the next one to run). */
  checkpoint(step: number): Promise<void>;
  /** Emits 'step' (a StepEvent) and 'progress' (a ProgressEvent) after every step. */
  events: EventEmitter;
  setStatus(patch: Record<string, unknown>): void;
}

export interface EpochSteps {
  /** The step after the epoch's last. */
  globalStep: number;
  /** Loss sum and samples of the steps whose update was applied. */
  lossSum: number;
  samples: number;
  seconds: number;
}

export class StepDriver {
  readonly totalSteps: number;
  private readonly throughput = new Throughput();

  constructor(private readonly o: StepDriverOptions) {
    this.totalSteps = o.plan.stepsPerEpoch * o.spec.epochs;
  }

  /** Every `hashCheckEvery` steps, every rank reports a parameter hash. */
  private hashDue(globalStep: number): boolean {
    const every = this.o.spec.hashCheckEvery;
    return every > 0 && (globalStep + 1) % every === 0;
  }

  /** Runs the rest of `epoch`, starting at `globalStep`. */
  async runEpoch(epoch: number, globalStep: number): Promise<EpochSteps> {
    const { spec, plan, membership, generations, recovery } = this.o;
    const run: EpochRun = { epoch, next: globalStep, start: performance.now(), lossSum: 0, samples: 0 };
    while (plan.cursor().epoch === epoch) {
      const at = run.next;
      await recovery.run('admitting workers', at, () => generations.admitWaiting(at));
      const end = at + this.stepsToDrain(at);
      await recovery.run(
        () => `step ${run.next}`,
        () => run.next,
        () => this.runSteps(run, end),
        // The survivors had applied steps the coordinator heard no report of: they count, without reports.
        (applied) => {
          while (run.next <= Math.min(applied, end - 1)) this.commit(run, plan.peek(membership.members.length));
          return run.next >= end ? true : undefined;
        },
      );
      const every = spec.checkpoint.everySteps;
      if (every > 0 && run.next % every === 0 && plan.cursor().epoch === epoch) await this.o.checkpoint(run.next);
    }
    return {
      globalStep: run.next,
      lossSum: run.lossSum,
      samples: run.samples,
      seconds: (performance.now() - run.start) / 1000,
    };
  }

  /** Steps from `at` to the next point where the window drains: the epoch's end or a checkpoint. */
  private stepsToDrain(at: number): number {
    const left = this.o.plan.stepsLeftInEpoch();
    const every = this.o.spec.checkpoint.everySteps;
    return every > 0 ? Math.min(left, every - (at % every)) : left;
  }

  /**
   * Runs steps run.next .. end - 1 with up to spec.stepsAhead of them sent ahead, committing each as
   * its reports come in; returns early, drained, when workers wait to be admitted. A failure (a rank
   * failed, went silent or timed out) rejects with a StepFailedError for the recovery; the steps
   * sent after the failed one end with it (the recovery's abort fails them on every rank).
   */
  private async runSteps(run: EpochRun, end: number): Promise<true> {
    const { spec, plan, membership } = this.o;
    const world = membership.members.length;
    // Steps run.next .. run.next + pending.length - 1 are sent and not yet committed.
    const pending: SentStep[] = [];
    let lastDone = performance.timeOrigin + performance.now();
    try {
      while (run.next < end) {
        // Newcomers wait for the steps already sent, then join between two steps.
        const admitting = membership.waiting().length > 0;
        if (admitting && pending.length === 0) return true;
        while (!admitting && run.next + pending.length < end && pending.length < spec.stepsAhead) {
          const ahead = pending.length;
          pending.push(await this.send(run.next + ahead, plan.peek(world, ahead), world, ahead + 1));
        }
        const head = pending[0];
        const reports = await head.done;
        pending.shift();
        const doneAt = performance.timeOrigin + performance.now();
        const event: StepEvent = {
          step: head.globalStep,
          epoch: head.step.epoch,
          generation: head.gen,
          // A step sent ahead starts, as far as the coordinator can tell, when the one before it is done.
          commandAt: Math.max(head.sentAt, lastDone),
          doneAt,
          reports: [...reports.values()],
        };
        lastDone = doneAt;
        this.o.events.emit('step', event);
        if (this.hashDue(head.globalStep)) checkReplicasEqual(reports, `step ${head.globalStep}`);
        this.commit(run, head.step, world, reports);
      }
      return true;
    } finally {
      // Waits of steps sent after a failed one (or after a drift that fails the job) end now, not at their deadline.
      if (pending.length > 0) {
        this.o.control.interrupt(
          new StepFailedError(`steps from ${pending[0].globalStep} on were sent ahead of a failure`, []),
        );
      }
    }
  }

  /** Step `step` of the plan counts: its samples are committed, its loss recorded, progress announced. */
  private commit(run: EpochRun, step: PlannedStep, world?: number, reports?: Map<number, StepDone>): void {
    const { spec, plan, progress, stats, membership } = this.o;
    const at = run.next;
    plan.advance();
    commitRange(progress.committed, step.epoch, step.start, step.globalCount);
    let stepLoss = 0;
    if (reports) {
      const recorded = stats.record(at, reports);
      stepLoss = recorded.lossSum;
      if (recorded.applied) {
        run.lossSum += stepLoss;
        run.samples += step.globalCount;
      }
    }
    this.throughput.add(step.globalCount);
    run.next += 1;
    const stepsPerEpoch = plan.stepsPerEpoch;
    const elapsed = (performance.now() - run.start) / 1000;
    const rate = this.throughput.rate() || run.samples / Math.max(elapsed, 1e-9);
    const remainingSteps = (spec.epochs - run.epoch - 1) * stepsPerEpoch + (stepsPerEpoch - step.step - 1);
    const event: ProgressEvent = {
      epoch: run.epoch,
      epochs: spec.epochs,
      step: step.step + 1,
      stepsPerEpoch,
      globalStep: run.next,
      loss: step.globalCount > 0 ? stepLoss / step.globalCount : 0,
      samplesPerSec: rate,
      etaSec: rate > 0 ? (remainingSteps * spec.batchSize) / rate : Infinity,
      worldSize: world ?? membership.members.length,
      generation: membership.generation,
    };
    this.o.setStatus({ progress: event, line: formatProgress(event) });
    this.o.events.emit('progress', event);
  }

  /**
   * Sends one step to every member, its reports awaited from now on (a step `position` places behind
   * the oldest unacknowledged one has that many step deadlines to be done in).
   */
  private async send(globalStep: number, step: PlannedStep, world: number, position: number): Promise<SentStep> {
    const { spec, control, membership } = this.o;
    const gen = membership.generation;
    const done = control.collect(
      `step ${globalStep}`,
      (r): r is StepDone => r.type === 'stepDone' && r.step === globalStep && r.gen === gen,
      spec.timeouts.stepMs * position,
    );
    const sentAt = performance.timeOrigin + performance.now();
    // A communication hook may run several collective operations per step: it gets a block of op ids.
    const op = control.takeOps(COMM_HOOK_OPS);
    await control.broadcast({
      type: 'step',
      gen,
      step: globalStep,
      epoch: step.epoch,
      op,
      slices: step.slices.map((sl) => [sl.start, sl.count] as [number, number]),
      globalCount: step.globalCount,
      lr: learningRateAt(spec.optimizer, globalStep, world, this.totalSteps),
      hash: this.hashDue(globalStep),
    });
    return { globalStep, step, gen, sentAt, done };
  }
}

interface EpochRun {
  epoch: number;
  /** The next step to commit. */
  next: number;
  start: number;
  /** Loss sum and samples of the steps whose update was applied. */
  lossSum: number;
  samples: number;
}

interface SentStep {
  globalStep: number;
  step: PlannedStep;
  gen: number;
  sentAt: number;
  done: Promise<Map<number, StepDone>>;
}
