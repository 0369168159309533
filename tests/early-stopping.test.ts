// Early stopping's decision, epoch by epoch, against tf.callbacks.earlyStopping's rule: training
// stops after `patience` epochs in a row without an improvement of more than minDelta.
import { describe, expect, it } from 'vitest';
import { EarlyStopping } from '@tfjs-ddp/coordinator';

/** The epoch (0-based) at which training stops for these validation losses, or -1. */
function stopsAt(losses: number[], patience: number, minDelta = 0): number {
  const early = new EarlyStopping({ monitor: 'val_loss', patience, minDelta });
  for (const [epoch, loss] of losses.entries()) if (early.observe(epoch, { val_loss: loss }).stop) return epoch;
  return -1;
}

describe('early stopping', () => {
  const losses = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7];

  it('stops after `patience` epochs in a row without improvement', () => {
    expect(stopsAt(losses, 1)).toBe(2);
    expect(stopsAt(losses, 2)).toBe(3);
    expect(stopsAt(losses, 3)).toBe(4);
    expect(stopsAt(losses, 4)).toBe(-1); // epoch 5 improves before the fourth
    expect(stopsAt(losses, 0)).toBe(2);
  });

  it('counts only improvements larger than minDelta, and remembers the best epoch', () => {
    const early = new EarlyStopping({ monitor: 'val_loss', patience: 2, minDelta: 0.15 });
    expect(early.observe(0, { val_loss: 1.0 })).toEqual({ improved: true, stop: false });
    expect(early.observe(1, { val_loss: 0.9 })).toEqual({ improved: false, stop: false }); // by 0.1 only
    expect(early.observe(2, { val_loss: 0.8 })).toEqual({ improved: true, stop: false }); // 0.2 below 1.0
    expect(early.observe(3, { val_loss: 0.7 })).toEqual({ improved: false, stop: false });
    expect(early.observe(4, { val_loss: 0.66 })).toEqual({ improved: false, stop: true });
    expect(early.bestEpochIndex).toBe(2);
    expect(early.bestValue).toBe(0.8);
  });

  it('takes higher as better for accuracy', () => {
    const early = new EarlyStopping({ monitor: 'val_accuracy', patience: 1, minDelta: 0 });
    expect(early.observe(0, { val_accuracy: 0.5 }).improved).toBe(true);
    expect(early.observe(1, { val_accuracy: 0.6 }).improved).toBe(true);
    expect(early.observe(2, { val_accuracy: 0.55 })).toEqual({ improved: false, stop: true });
    expect(early.bestEpochIndex).toBe(1);
  });

  it('names the metrics there are when the monitored one is missing', () => {
    const early = new EarlyStopping({ monitor: 'val_accuracy', patience: 1, minDelta: 0 });
    expect(() => early.observe(0, { val_loss: 1 })).toThrow(/produced only val_loss/);
  });
});
