// Optimizers from the job spec, with the learning-rate schedule data-parallel training needs: linear
// scaling with the world size (a global batch N times larger takes an N times larger step), a
// linear warmup so the scaled rate does not blow up the first steps, and an optional cosine decay
// after it. tfjs optimizers take a fixed rate at construction, so the schedule rewrites the rate
// each optimizer reads when it applies.
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { jobOptimizerSchema, type JobOptimizer } from '../job/index.js';

/** The job spec's optimizer section, before defaults are filled in. */
export type OptimizerSpecInput = z.input<typeof jobOptimizerSchema>;

function build(spec: JobOptimizer, learningRate: number): tf.Optimizer {
  switch (spec.type) {
    case 'sgd':
      return tf.train.sgd(learningRate);
    case 'momentum':
      return tf.train.momentum(learningRate, spec.momentum);
    case 'adam':
      return tf.train.adam(learningRate, spec.beta1, spec.beta2, spec.epsilon);
    case 'rmsprop':
      return tf.train.rmsprop(learningRate, spec.decay, spec.momentum, spec.epsilon);
    case 'adagrad':
      return tf.train.adagrad(learningRate);
    case 'adadelta':
      return tf.train.adadelta(learningRate, spec.rho, spec.epsilon);
  }
}

/**
 * Changes the rate an existing optimizer applies. SGD and momentum cache it as a scalar tensor that
 * setLearningRate rebuilds; the others read their learningRate field on every applyGradients.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(learningRate);
  else o.learningRate = learningRate;
}

/**
 * The learning rate of a step (counted from 0) under the spec's scaling, warmup and schedule. A cosine
 * schedule spans schedule.totalSteps, or else `totalSteps` (the job's steps, which the coordinator knows).
 */
export function learningRateAt(spec: JobOptimizer, step: number, worldSize: number, totalSteps?: number): number {
  const scale = spec.scaleWithWorldSize ? worldSize : 1;
  const target = spec.learningRate * scale;
  if (step < spec.warmupSteps) return (target * (step + 1)) / spec.warmupSteps;
  const schedule = spec.schedule;
  const decayed = step - spec.warmupSteps;
  if (!schedule || decayed === 0) return target;
  const total = schedule.totalSteps ?? totalSteps;
  if (total === undefined) {
    throw new Error(
      `the cosine schedule needs the number of steps it spans: set optimizer.schedule.totalSteps, or pass the job's total steps`,
    );
  }
  const floor = schedule.minLearningRate * scale;
  const progress = Math.min(1, decayed / Math.max(1, total - spec.warmupSteps));
  return floor + 0.5 * (target - floor) * (1 + Math.cos(Math.PI * progress));
}

export class ScheduledOptimizer {
  readonly spec: JobOptimizer;
  readonly optimizer: tf.Optimizer;
  private rate: number;

  constructor(
    spec: OptimizerSpecInput,
    private worldSize = 1,
    /** Steps the whole job takes, for a cosine schedule that names no totalSteps. */
    private readonly totalSteps?: number,
  ) {
    const parsed = jobOptimizerSchema.safeParse(spec);
    if (!parsed.success) throw new Error(`invalid optimizer spec:\n${z.prettifyError(parsed.error)}`);
    this.spec = parsed.data;
    this.rate = learningRateAt(this.spec, 0, worldSize, totalSteps);
    this.optimizer = build(this.spec, this.rate);
  }

  get learningRate(): number {
    return this.rate;
  }

  /** Sets the rate for this step (from 0); call before applying its gradients. Returns the rate. */
  beginStep(step: number): number {
    const rate = learningRateAt(this.spec, step, this.worldSize, this.totalSteps);
    if (rate !== this.rate) {
      setLearningRate(this.optimizer, rate);
      this.rate = rate;
    }
    return rate;
  }

  /** After a membership change: later steps scale with the new world size. */
  setWorldSize(worldSize: number): void {
    this.worldSize = worldSize;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

export function createOptimizer(spec: OptimizerSpecInput, worldSize = 1, totalSteps?: number): ScheduledOptimizer {
  return new ScheduledOptimizer(spec, worldSize, totalSteps);
}
