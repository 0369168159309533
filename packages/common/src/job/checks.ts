// Rules that span several fields of a job spec (a metric that needs a particular loss, early
// stopping on a validation metric that needs a validation set). They run even when other fields
// are invalid, so every problem is reported at once, and therefore read the value defensively.
import type { z } from 'zod';
import { show } from './messages.js';
import { BINARY_ONLY_METRICS, LOSS_NAMES } from './names.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkCrossFieldRules(spec: unknown, ctx: z.core.$RefinementCtx): void {
  if (!isRecord(spec)) return;
  const add = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const loss = typeof spec.loss === 'string' ? spec.loss : undefined;
  const metrics = Array.isArray(spec.metrics) ? spec.metrics.filter((m): m is string => typeof m === 'string') : [];

  const zoo = isRecord(spec.model) && typeof spec.model.zoo === 'string' ? spec.model.zoo : undefined;
  if (
    zoo === 'transformer-lm' ||
    (isRecord(spec.data) && isRecord(spec.data.train) && spec.data.train.type === 'text')
  ) {
    checkLanguageModel(spec, zoo, add);
  } else if (spec.loss === undefined && isRecord(spec.model) && !('module' in spec.model)) {
    add(
      ['loss'],
      `required but missing; expected one of ${LOSS_NAMES.join(', ')} ` +
        '(only a model module that exports its own loss may leave it out)',
    );
  }

  metrics.forEach((metric, i) => {
    if (metrics.indexOf(metric) !== i) add(['metrics', i], `got ${show(metric)} a second time; list each metric once`);
    else if (BINARY_ONLY_METRICS.has(metric) && loss !== 'binaryCrossentropy') {
      add(
        ['metrics', i],
        `got ${show(metric)} with loss ${loss === undefined ? 'from the model module' : show(loss)}; ` +
          `${metric} is defined for binary 0/1 labels only, so it needs loss binaryCrossentropy (use accuracy otherwise)`,
      );
    }
  });

  const hook = isRecord(spec.allreduce) ? spec.allreduce.compression : undefined;
  const hookType = isRecord(hook) ? hook.type : hook;
  if (isRecord(spec.optimizer) && spec.optimizer.shard === true && (hookType === 'topk' || hookType === 'powersgd')) {
    add(
      ['optimizer', 'shard'],
      `got shard: true with allreduce.compression ${show(hookType)}; a sharded optimizer updates each shard from ` +
        `a plain reduce-scatter of the gradient, which ${show(hookType)} is not (it reduces a compressed ` +
        `approximation with error feedback). Use compression none, f16 or bf16, or set optimizer.shard to false`,
    );
  }

  const early = spec.earlyStopping;
  if (isRecord(early) && typeof early.monitor === 'string') {
    const monitor = early.monitor;
    const hasValidation = isRecord(spec.data) && spec.data.validation !== undefined;
    const metric = monitor.replace(/^val_/, '');
    if (monitor.startsWith('val_') && !hasValidation) {
      add(
        ['earlyStopping', 'monitor'],
        `got ${show(monitor)}, but data.validation is not set; add data.validation ` +
          `(a source or { fraction: 0.1 }) or monitor ${show(metric)}`,
      );
    }
    if (metric !== 'loss' && !metrics.includes(metric)) {
      add(
        ['earlyStopping', 'monitor'],
        `got ${show(monitor)}, but metrics does not list ${show(metric)}; add it to metrics`,
      );
    }
  }
}

/** A transformer-lm trains on text with its own loss; text feeds a transformer-lm or a model module. */
function checkLanguageModel(
  spec: Record<string, unknown>,
  zoo: string | undefined,
  add: (path: (string | number)[], message: string) => void,
): void {
  const train = isRecord(spec.data) && isRecord(spec.data.train) ? spec.data.train : {};
  if (zoo === 'transformer-lm' && train.type !== 'text') {
    add(
      ['data', 'train', 'type'],
      `got ${show(train.type)} with model transformer-lm, which reads token windows; use type text (files or dir, context)`,
    );
  }
  if (zoo !== undefined && zoo !== 'transformer-lm') {
    add(
      ['model', 'zoo'],
      `got ${show(zoo)} with text data; token windows train zoo model transformer-lm (or a model module)`,
    );
  }
  if (zoo === 'transformer-lm' && spec.loss !== undefined && spec.loss !== 'sparseCategoricalCrossentropy') {
    add(
      ['loss'],
      `got ${show(spec.loss)}, but transformer-lm trains on next-token cross-entropy; set sparseCategoricalCrossentropy or leave loss out`,
    );
  }
  if (zoo === 'transformer-lm' && Array.isArray(spec.metrics) && spec.metrics.length > 0) {
    add(
      ['metrics'],
      'transformer-lm reports loss and perplexity; metrics count one label per sample and do not apply to token windows, so leave metrics out',
    );
  }
}
