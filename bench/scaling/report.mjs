// Renders bench:scaling: samples/s and scaling efficiency of ours and PyTorch DDP side by side, with
// where our step time goes (every step phase the workers time), or one JSON document.
import { STEP_PHASES } from '@tfjs-ddp/common';
import { table } from '../table.mjs';

const ms = (s) => (s * 1000).toFixed(1);

export function toJson(run) {
  return JSON.stringify(
    {
      ...run,
      method: {
        samplesPerSec:
          'ours: the job summary (training samples / epoch seconds, evaluation excluded); torch: samples / time between barriers around the epoch',
        efficiency: 'samplesPerSec(N) / (N * samplesPerSec(1))',
        phases: "our mean seconds per step and rank: the workers' own step timings",
      },
    },
    null,
    2,
  );
}

export function toText(run) {
  const { machine, load, torch, rows } = run;
  const backends = [...new Set(rows.flatMap((r) => r.ours.backends))].join(', ');
  const lines = [
    `tfjs-ddp${torch ? ' vs PyTorch DDP (gloo)' : ''}: training throughput, ${machine.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; node ${machine.node}${torch ? `, torch ${torch}` : ''}`,
    `load average (1 min) before ${load.before.toFixed(2)}, after ${load.after.toFixed(2)}`,
    `ours: local cluster, ${backends || run.backend} backend, one process per worker` +
      (torch ? '; torch: one process per rank, torch.set_num_threads(1)' : '; PyTorch not run (--without-torch)'),
    'efficiency = samples/s with N workers / (N x samples/s with 1, same stepsAhead); step phases are our mean ms per step and rank',
    "ahead = the job's stepsAhead (1: lockstep, each step waits for every report of the one before)",
    '',
  ];
  const header = ['model', 'batch', 'samples', 'ahead', 'N', 'ours/s', 'eff', 'torch/s', 'eff', ...STEP_PHASES];
  const body = rows.map((r) => [
    r.model,
    `${r.batch}`,
    `${r.samples}`,
    `${r.stepsAhead}`,
    `${r.workers}`,
    `${Math.round(r.ours.samplesPerSec)}`,
    r.ours.efficiency.toFixed(2),
    r.torch ? `${Math.round(r.torch.samplesPerSec)}` : '-',
    r.torch ? r.torch.efficiency.toFixed(2) : '-',
    ...STEP_PHASES.map((phase) => ms(r.ours.phases[phase])),
  ]);
  lines.push(...table(header, body, [0]));
  return lines.join('\n');
}
