// Renders bench:tta: per hook (and PyTorch DDP) the epoch at which the test accuracy reached the
// target, the training seconds and the wall seconds until then, or one JSON document.
import { table } from '../table.mjs';

export function toJson(run) {
  return JSON.stringify(
    {
      ...run,
      method: {
        trainSeconds:
          'sum of the epoch training times up to and including the epoch that reached the target (evaluation excluded)',
        wallSeconds:
          'from the start of the run (process and data loading included) to the evaluation that reached the target',
        accuracy: 'test-set accuracy (10,000 samples), evaluated after every epoch',
      },
    },
    null,
    2,
  );
}

export function toText(run) {
  const { machine, load, torch, target, workers, rows } = run;
  const lines = [
    `time to ${target} test accuracy, Fashion-MNIST MLP, ${workers} workers, ${machine.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}; node ${machine.node}, torch ${torch}`,
    `load average (1 min) before ${load.before.toFixed(2)}, after ${load.after.toFixed(2)}`,
    'test accuracy is evaluated after every epoch; train s = epoch training time summed up to the epoch that reached it',
    'wall s = from the start of the run (start-up, data loading and evaluations included) to that evaluation',
    '',
  ];
  const header = ['run', 'epochs', 'train s', 'wall s', 'samples/s', 'accuracy by epoch'];
  const body = rows.map((r) => [
    r.name,
    r.reached ? `${r.reached.epoch}` : `not in ${r.accuracies.length}`,
    r.reached ? r.reached.trainSeconds.toFixed(1) : '',
    r.reached ? r.reached.wallSeconds.toFixed(1) : '',
    `${Math.round(r.samplesPerSec)}`,
    r.accuracies.map((a) => a.toFixed(4)).join(' '),
  ]);
  lines.push(...table(header, body, [0, header.length - 1]));
  return lines.join('\n');
}
