// Early stopping on a monitored validation metric: stop after `patience` epochs without an
// improvement of more than `minDelta`, remembering the best epoch so its weights can be restored.

export interface EarlyStoppingConfig {
  monitor: string;
  patience: number;
  minDelta: number;
}

export class EarlyStopping {
  private best: number | undefined;
  private bestEpoch = -1;
  private wait = 0;
  private readonly lowerIsBetter: boolean;

  constructor(private readonly config: EarlyStoppingConfig) {
    this.lowerIsBetter = /loss|error|perplexity/.test(config.monitor);
  }

  /** Records an epoch's metrics; returns whether this epoch is the best so far. */
  observe(epoch: number, metrics: Record<string, number>): { improved: boolean; stop: boolean } {
    const value = metrics[this.config.monitor];
    if (value === undefined || !Number.isFinite(value)) {
      throw new Error(
        `early stopping monitors "${this.config.monitor}" but epoch ${epoch} produced only ${Object.keys(metrics).join(', ')}; ` +
          `set earlyStopping.monitor to one of those`,
      );
    }
    const improved =
      this.best === undefined ||
      (this.lowerIsBetter ? value < this.best - this.config.minDelta : value > this.best + this.config.minDelta);
    if (improved) {
      this.best = value;
      this.bestEpoch = epoch;
      this.wait = 0;
    } else {
      this.wait += 1;
    }
    // As tf.callbacks.earlyStopping and Keras: the `patience`-th epoch in a row without an
    // improvement is the last one (patience 0 stops at the first, like 1).
    return { improved, stop: !improved && this.wait >= this.config.patience };
  }

  /** What a checkpoint keeps, so a resumed job stops where the undisturbed one would. */
  state(): { best?: number; bestEpoch: number; wait: number } {
    return { best: this.best, bestEpoch: this.bestEpoch, wait: this.wait };
  }

  restore(state: { best?: number; bestEpoch: number; wait: number }): void {
    this.best = state.best;
    this.bestEpoch = state.bestEpoch;
    this.wait = state.wait;
  }

  get bestValue(): number | undefined {
    return this.best;
  }

  get bestEpochIndex(): number {
    return this.bestEpoch;
  }
}
