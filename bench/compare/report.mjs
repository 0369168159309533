// Renders bench:compare: a table per run with our time, gloo's, their ratio and the server delivery
// rate against the raw NATS bandwidth, the lines the done-criteria are read from, or one JSON document.
import { table } from '../table.mjs';

const MB = 1e6;
const KIB = 1024;

export const TIMING =
  'each rank times its own operation, started right after a barrier; an iteration takes the slowest rank ' +
  '(the same for ours and gloo)';

export function sizeLabel(kib) {
  return kib >= KIB && kib % KIB === 0 ? `${kib / KIB} MiB` : `${kib} KiB`;
}

export function toJson(run) {
  return JSON.stringify(
    {
      ...run,
      method: {
        timing: TIMING,
        ratio: 'ours median / gloo f32 median, same world size and buffer size',
        delivered: 'sum over ranks of the bytes their NATS connections received during the operation',
        deliveryRate: 'delivered / median time',
        rawRatio: 'deliveryRate / raw NATS pub->sub bytes per second',
        limitMs: 'f32 only: 2(N-1)*S / raw, the time the server needs to deliver an f32 all-reduce at the raw rate',
        cpu:
          'CPU seconds (from /proc) of nats-server and of the rank processes per operation over the whole case ' +
          '(warm-up, barriers and the harness resetting and checking buffers included); coresBusy = all of it / wall time',
      },
    },
    null,
    2,
  );
}

export function toText(run) {
  const { machine, load, server, raw, torch, cases, verdicts } = run;
  const lines = [
    `tfjs-ddp all-reduce vs torch.distributed gloo, ${machine.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `versions: node ${machine.node}, nats-server ${machine.natsServer}, torch ${torch}`,
    `load average (1 min) before ${load.before.toFixed(2)}, after ${load.after.toFixed(2)}`,
    `server: max_payload ${server.maxPayload} B, chunk ${server.chunkBytes} B; our ranks are processes with one NATS connection each; gloo ranks one thread each`,
    `time: ${TIMING}; median (min-max) in ms`,
    `raw NATS pub->sub: ${fmt(raw.bytesPerSecond / MB, 0)} MB/s (median of ${raw.runs.length} runs: ` +
      `${raw.runs.map((r) => fmt(r / MB, 0)).join(', ')}; half before, half after)`,
    'limit = 2(N-1)*S / raw: the f32 all-reduce time if the server delivered at the raw rate',
    "deliv'd = bytes all ranks' connections received per operation; delivery = deliv'd / t; /raw = delivery / raw",
    'cpu srv/ranks = CPU seconds per operation of nats-server and of all ranks together (barriers and the harness included); ' +
      'cores = average cores busy during the case',
    '',
  ];
  const header = [
    'N',
    'size',
    'ours',
    't ms',
    'min-max',
    'gloo f32',
    'ours/gloo',
    "deliv'd MB",
    'MB/s',
    '/raw',
    'limit ms',
    'cpu srv',
    'cpu ranks',
    'cores',
  ];
  const rows = cases.map((c) => [
    `${c.world}`,
    sizeLabel(c.sizeKiB),
    c.variant,
    fmt(c.timeMs.median, 1),
    `${fmt(c.timeMs.min, 1)}-${fmt(c.timeMs.max, 1)}`,
    fmt(c.glooMs.median, 1),
    fmt(c.ratio, 2),
    fmt(c.deliveredBytes / MB, 2),
    fmt(c.deliveryRate / MB, 0),
    fmt(c.rawRatio, 2),
    c.limitMs === undefined ? '' : fmt(c.limitMs, 1),
    c.cpu ? fmt(c.cpu.serverSecondsPerOp, 3) : 'n/a',
    c.cpu ? fmt(c.cpu.ranksSecondsPerOp, 3) : 'n/a',
    c.cpu ? fmt(c.cpu.coresBusy, 2) : 'n/a',
  ]);
  lines.push(...table(header, rows, [2]), '');
  for (const v of verdicts) lines.push(`${v.holds ? 'holds' : 'DOES NOT HOLD'}: ${v.claim} (${v.detail})`);
  return lines.join('\n');
}

function fmt(x, digits) {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}
