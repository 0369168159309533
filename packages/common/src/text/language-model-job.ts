// Whether a job trains a language model: such jobs get a validation pass before the first step
// and perplexity next to the loss.
import type { JobSpec } from '../job/schema.js';

export function isLanguageModelJob(spec: Pick<JobSpec, 'model' | 'data'>): boolean {
  return ('zoo' in spec.model && spec.model.zoo === 'transformer-lm') || spec.data.train.type === 'text';
}
