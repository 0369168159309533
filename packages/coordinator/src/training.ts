// The course of a job once its workers are there: resume from the newest checkpoint or start, form
// the first generation, then per epoch the step driver, validation, early stopping and a checkpoint;
// at the end the best weights (if asked for), test evaluation, the trained model from rank 0, and
// summary.json and report.html in the output directory.
import type { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { DataPlan, isLanguageModelJob, type JobSpec, type Logger } from '@tfjs-ddp/common';
import type { Rank0Files } from './artifacts.js';
import { BestWeights } from './best-weights.js';
import type { Checkpointing } from './checkpointing.js';
import { JobFailedError, ShardStateLostError } from './errors.js';
import type { ControlPlane } from './control.js';
import { EarlyStopping } from './early-stopping.js';
import { evaluateSplit } from './evaluation.js';
import type { Generations } from './generations.js';
import type { Membership } from './membership.js';
import type { Recovery } from './recovery.js';
import { writeReport } from './report/write.js';
import { StepDriver } from './step-driver.js';
import { StepStats } from './step-stats.js';
import { emptyProgress, writeSummary, type EpochSummary, type JobSummary } from './summary.js';
import type { RunHistory } from './timeline/history.js';
import type { StragglerSpell } from './timeline/stragglers.js';

export interface TrainingOptions {
  spec: JobSpec;
  specHash: string;
  control: ControlPlane;
  membership: Membership;
  generations: Generations;
  recovery: Recovery;
  checkpointing: Checkpointing;
  files: Rank0Files;
  /** The series the report draws, as recorded so far. */
  history(): RunHistory;
  /** The workers flagged as stragglers so far. */
  stragglers(): StragglerSpell[];
  /** Emits 'epoch' (an EpochSummary) after every epoch; the step driver emits the rest. */
  events: EventEmitter;
  setStatus(patch: Record<string, unknown>): void;
  log: Logger;
}

/** Times training goes back to a checkpoint after a sharded optimizer's state was lost, before the job fails. */
const MAX_SHARD_RESTARTS = 8;

/**
 * Trains the job to its end; `started` is when the coordinator started (performance.now()). A sharded
 * optimizer's state lost with a worker sends training back to the last checkpoint, as a restarted
 * coordinator would resume: the data plan, progress and committed samples are the checkpoint's, so
 * every sample is still trained once per epoch.
 */
export async function train(o: TrainingOptions, started: number): Promise<JobSummary> {
  for (let restarts = 0; ; restarts++) {
    try {
      return await trainFromCheckpoint(o, started);
    } catch (err) {
      const last = o.checkpointing.last;
      if (!(err instanceof ShardStateLostError) || restarts >= MAX_SHARD_RESTARTS) throw err;
      if (!last) {
        throw new JobFailedError(
          `${err.message}, and there is no checkpoint to go back to; set checkpoint.everySteps, or optimizer.shard: false to survive losing workers`,
          { cause: err },
        );
      }
      o.log.warn('sharded optimizer state lost; going back to the last checkpoint', {
        checkpoint: last,
        reason: err.message,
      });
    }
  }
}

async function trainFromCheckpoint(o: TrainingOptions, started: number): Promise<JobSummary> {
  const { spec, membership, generations, recovery, checkpointing, log } = o;
  const sizes = membership.sizes();
  const plan = new DataPlan({ size: sizes.train, batchSize: spec.batchSize, seed: spec.seed });
  const early = spec.earlyStopping ? new EarlyStopping(spec.earlyStopping) : undefined;
  const progress = emptyProgress();
  const stats = new StepStats(spec, progress, () => checkpointing.last);
  const best = new BestWeights(o);
  const resume = await checkpointing.resume(plan, progress, early);
  let globalStep = resume?.step ?? 0;
  const checkpoint = (step: number) => checkpointing.save(step, plan, progress, early);
  const driver = new StepDriver({ ...o, plan, progress, stats, checkpoint });
  const evaluate = (split: 'validation' | 'test', size: number) =>
    recovery.run(`${split} evaluation`, globalStep, () => evaluateSplit(o, split, size));

  await generations.form(globalStep, resume ? `resumed from ${resume.path}` : 'start', resume?.state);
  o.setStatus({ state: 'training', epochs: spec.epochs, stepsPerEpoch: plan.stepsPerEpoch });
  const startValidation =
    sizes.validation > 0 && !resume && (spec.evaluateAtStart ?? isLanguageModelJob(spec))
      ? await evaluate('validation', sizes.validation)
      : undefined;
  if (startValidation) log.info('validation before training', prefixed('val_', startValidation));

  let trainSamples = 0;
  let trainSeconds = 0;
  for (let epoch = plan.cursor().epoch; epoch < spec.epochs && !progress.stoppedEarly; epoch++) {
    const steps = await driver.runEpoch(epoch, globalStep);
    globalStep = steps.globalStep;
    trainSamples += steps.samples;
    trainSeconds += steps.seconds;
    const summary: EpochSummary = {
      epoch: epoch + 1,
      trainLoss: steps.samples > 0 ? steps.lossSum / steps.samples : 0,
      samples: steps.samples,
      seconds: steps.seconds,
      samplesPerSec: steps.samples / steps.seconds,
    };
    if (sizes.validation > 0) summary.validation = await evaluate('validation', sizes.validation);
    progress.epochs.push(summary);
    log.info('epoch done', {
      epoch: epoch + 1,
      trainLoss: summary.trainLoss.toFixed(5),
      samplesPerSec: Math.round(summary.samplesPerSec),
      ...prefixed('val_', summary.validation),
    });
    o.events.emit('epoch', summary);
    if (early) {
      const metrics = { loss: summary.trainLoss, ...prefixed('val_', summary.validation) };
      const { improved, stop } = early.observe(epoch, metrics);
      if (improved && spec.earlyStopping?.restoreBestWeights) await best.snapshot(globalStep);
      if (stop) {
        progress.stoppedEarly = true;
        log.info('early stopping', {
          epoch: epoch + 1,
          monitor: spec.earlyStopping?.monitor,
          best: early.bestValue,
          bestEpoch: early.bestEpochIndex + 1,
        });
      }
    }
    await checkpoint(globalStep);
  }
  let bestWeightsRestored: boolean | undefined;
  if (early && progress.stoppedEarly && spec.earlyStopping?.restoreBestWeights)
    bestWeightsRestored = await best.restore(early.bestEpochIndex, globalStep);

  const test = sizes.test > 0 ? await evaluate('test', sizes.test) : undefined;
  if (test) log.info('test evaluation', test);
  const predictSamples = isLanguageModelJob(spec) ? 0 : Math.min(sizes.test, 16);
  const { files, predictions, fit } = await recovery.run('sending the trained model', globalStep, () =>
    o.files.saveModel(predictSamples),
  );
  const result: JobSummary = {
    job: spec.name,
    specHash: o.specHash,
    status: progress.stoppedEarly ? 'stopped-early' : 'completed',
    ...(bestWeightsRestored !== undefined && { bestWeightsRestored }),
    backends: membership.backends(),
    worldSize: membership.members.length,
    generation: membership.generation,
    epochs: progress.epochs,
    bestEpoch: early ? early.bestEpochIndex + 1 : undefined,
    test,
    steps: globalStep,
    samplesPerSec: trainSeconds > 0 ? trainSamples / trainSeconds : 0,
    wallSeconds: (performance.now() - started) / 1000,
    output: spec.output,
    files,
    predictions,
    tensorsHeld: stats.tensorsHeld,
    memory: stats.memory,
    startValidation,
    abortedSteps: recovery.aborted,
    nonFiniteSteps: progress.nonFiniteSteps,
    generations: generations.records,
    committed: progress.committed,
    resumedAtStep: resume?.step,
    checkpoints: progress.checkpoints,
    history: o.history(),
    stragglers: o.stragglers(),
    fit,
  };
  const path = await writeSummary(result);
  await checkpointing.markCompleted(globalStep);
  log.info('summary written', { path });
  await writeReport(join(spec.output, 'report.html'), result, spec);
  log.info('report written', { path: join(spec.output, 'report.html') });
  return result;
}

function prefixed(prefix: string, m: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m ?? {})) out[prefix + k] = v;
  return out;
}
