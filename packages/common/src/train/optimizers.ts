// Optimizers from the job spec, with the learning-rate schedule data-parallel training needs: linear
// scaling with the world size (a global batch N times larger takes an N times larger step), a
// linear warmup so the scaled rate does not blow up the first steps, and an optional cosine decay
// after it. tfjs optimizers take a fixed rate at construction, so the coordinator computes each
// step's rate (learningRateAt) and every worker rewrites the rate its optimizer reads
// (setLearningRate) before it applies the step.
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
 * setLearningRate rebuilds; the others read their learningRate field on every applyGradients. An
 * unchanged rate returns at once, so a constant rate rebuilds no tensor step after step.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (o.learningRate === learningRate) return;
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
  if (!schedule) return target;
  const total = schedule.totalSteps ?? totalSteps;
  if (total === undefined) {
    throw new Error(
      `the cosine schedule needs the number of steps it spans: set optimizer.schedule.totalSteps, or pass the job's total steps`,
    );
  }
  const floor = schedule.minLearningRate * scale;
  const progress = Math.min(1, (step - spec.warmupSteps) / Math.max(1, total - spec.warmupSteps));
  // Written down from the target, so the first step after the warmup takes exactly the full rate.
  return target - 0.5 * (target - floor) * (1 - Math.cos(Math.PI * progress));
}

/**
 * The job's optimizer. It starts at the spec's rate; in training the worker sets each step's rate
 * from the schedule (setLearningRate) before it applies the step.
 */
export class ScheduledOptimizer {
  readonly optimizer: tf.Optimizer;

  constructor(spec: OptimizerSpecInput) {
    const parsed = jobOptimizerSchema.safeParse(spec);
    if (!parsed.success) throw new Error(`invalid optimizer spec:\n${z.prettifyError(parsed.error)}`);
    this.optimizer = build(parsed.data, parsed.data.learningRate);
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

export function createOptimizer(spec: OptimizerSpecInput): ScheduledOptimizer {
  return new ScheduledOptimizer(spec);
}
