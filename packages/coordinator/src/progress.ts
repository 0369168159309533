// Progress of a running job as events and as the one-line display the CLI redraws:
// epoch, step/steps, loss, samples/s and the estimated time left.

export interface ProgressEvent {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  loss: number;
  samplesPerSec: number;
  etaSec: number;
  worldSize: number;
  generation: number;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export function formatProgress(p: ProgressEvent): string {
  return (
    `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.stepsPerEpoch} loss ${p.loss.toFixed(4)} ` +
    `${Math.round(p.samplesPerSec).toLocaleString('en-US')} samples/s workers ${p.worldSize} ETA ${formatDuration(p.etaSec)}`
  );
}

/** Samples/s over a sliding window of recent steps, so the figure follows the current speed. */
export class Throughput {
  private readonly samples: { t: number; n: number }[] = [];
  constructor(private readonly windowMs = 5_000) {}

  add(n: number, now = performance.now()): void {
    this.samples.push({ t: now, n });
    while (this.samples.length > 2 && now - this.samples[0].t > this.windowMs) this.samples.shift();
  }

  rate(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const dt = (last.t - first.t) / 1000;
    let n = 0;
    for (let i = 1; i < this.samples.length; i++) n += this.samples[i].n;
    return dt > 0 ? n / dt : 0;
  }
}
