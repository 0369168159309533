// The step clock: for each step of an epoch, admit the workers waiting to join, send the step
// (every member's slice of the next global batch, the learning rate, whether to hash), collect every
// rank's report under the retry policy, commit the step's samples in the data plan, and announce
// progress. Checkpoints fall due every checkpoint.everySteps steps within an epoch.
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
    const { spec, plan, progress, stats, membership, generations, recovery } = this.o;
    const stepsPerEpoch = plan.stepsPerEpoch;
    const epochStart = performance.now();
    let lossSum = 0;
    let samples = 0;
    while (plan.cursor().epoch === epoch) {
      const at = globalStep;
      await recovery.run('admitting workers', at, () => generations.admitWaiting(at));
      let world = 0;
      let step!: PlannedStep;
      // The step is planned again after a recovery: the same samples, split over the new world size.
      const reports = await recovery.run(
        `step ${at}`,
        at,
        () => {
          world = membership.members.length;
          step = plan.peek(world);
          return this.runStep(at, step, world);
        },
        () => undefined,
      );
      plan.advance();
      commitRange(progress.committed, step.epoch, step.start, step.globalCount);
      let stepLoss = 0;
      if (reports) {
        if (this.hashDue(at)) checkReplicasEqual(reports, `step ${at}`);
        const recorded = stats.record(at, reports);
        stepLoss = recorded.lossSum;
        if (recorded.applied) {
          lossSum += stepLoss;
          samples += step.globalCount;
        }
      }
      this.throughput.add(step.globalCount);
      globalStep += 1;
      const elapsed = (performance.now() - epochStart) / 1000;
      const rate = this.throughput.rate() || samples / Math.max(elapsed, 1e-9);
      const remainingSteps = (spec.epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - step.step - 1);
      const event: ProgressEvent = {
        epoch,
        epochs: spec.epochs,
        step: step.step + 1,
        stepsPerEpoch,
        globalStep,
        loss: step.globalCount > 0 ? stepLoss / step.globalCount : 0,
        samplesPerSec: rate,
        etaSec: rate > 0 ? (remainingSteps * spec.batchSize) / rate : Infinity,
        worldSize: world,
        generation: membership.generation,
      };
      this.o.setStatus({ progress: event, line: formatProgress(event) });
      this.o.events.emit('progress', event);
      const every = spec.checkpoint.everySteps;
      if (every > 0 && globalStep % every === 0 && plan.cursor().epoch === epoch) await this.o.checkpoint(globalStep);
    }
    return { globalStep, lossSum, samples, seconds: (performance.now() - epochStart) / 1000 };
  }

  /** One training step on every member; rejects with StepFailedError when any rank fails or goes silent. */
  private async runStep(globalStep: number, step: PlannedStep, world: number): Promise<Map<number, StepDone>> {
    const { spec, control, membership } = this.o;
    const gen = membership.generation;
    const done = control.collect(
      `step ${globalStep}`,
      (r): r is StepDone => r.type === 'stepDone' && r.step === globalStep && r.gen === gen,
      spec.timeouts.stepMs,
    );
    const commandAt = performance.timeOrigin + performance.now();
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
    const reports = await done;
    const event: StepEvent = {
      step: globalStep,
      epoch: step.epoch,
      generation: gen,
      commandAt,
      doneAt: performance.timeOrigin + performance.now(),
      reports: [...reports.values()],
    };
    this.o.events.emit('step', event);
    return reports;
  }
}
