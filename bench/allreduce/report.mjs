// Renders the benchmark's results: an aligned plain-text table with a header saying how every
// column was measured, or the same content as one JSON document.
import { table } from '../table.mjs';
import { DELIVERY_FORMULA } from './stats.mjs';

const MB = 1e6;
const MIB = 2 ** 20;

export const TIMING_METHOD =
  'each rank times its own allReduce call, started right after a barrier; an iteration takes the slowest rank';

/** @param {object} run  everything measured, as built by allreduce.mjs */
export function toJson(run) {
  return JSON.stringify(
    {
      ...run,
      method: {
        timing: TIMING_METHOD,
        units: 'bytes and bytes per second; sizes given in MiB = 2^20 bytes',
        algbw: 'S / t, S = fp32 buffer bytes',
        busbw: 'algbw * 2(N-1)/N',
        delivery: DELIVERY_FORMULA,
        deliveryRate: 'deliveredBytesPerOp / t',
        measuredDeliveredBytesPerOp: 'sum over ranks of the bytes each NATS connection received during the call',
        ratio: 'deliveryRate / raw.bytesPerSecond',
      },
    },
    null,
    2,
  );
}

/** @param {object} run */
export function toText(run) {
  const { machine, server, raw, cases, warmup } = run;
  const lines = [
    `tfjs-ddp NATS all-reduce benchmark, ${machine.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `versions: node ${machine.node}, nats-server ${machine.natsServer}`,
    `server: ${server.url}, max_payload ${server.maxPayload} B; chunk ${server.chunkBytes} B; ` +
      'ranks are separate processes, one NATS connection each',
    `units: size in MiB = 2^20 B of fp32; MB = 10^6 B; MB/s = 10^6 B/s; ms = milliseconds`,
    `time: ${TIMING_METHOD}; median, min and max over the timed iterations, after ${warmup} warm-up all-reduces`,
    'algbw = S/t, busbw = algbw*2(N-1)/N (NCCL-tests definitions), S = fp32 buffer bytes, N = world size',
    DELIVERY_FORMULA,
    'measured = sum over ranks of the bytes their NATS connections received during the call (payload + NATS headers)',
    `raw NATS pub->sub: ${fmt(raw.bytesPerSecond / MB, 0)} MB/s, the median of ${raw.runs.length} runs ` +
      `(${raw.runs.map((r) => fmt(r / MB, 0)).join(', ')} MB/s; half before the cases, half after; ` +
      `one publisher process -> one subscriber process, ${raw.totalBytes / MIB} MiB in ${raw.chunkBytes} B messages, ` +
      'timed at the subscriber from first to last message)',
    'ratio = delivery / raw; raw is a single stream, and the server writes to several ranks at once, so a ratio above 1 is possible',
    '',
  ];
  const header = [
    'N',
    'size MiB',
    'dtype',
    'iters',
    't med ms',
    't min ms',
    't max ms',
    'algbw MB/s',
    'busbw MB/s',
    "deliv'd MB",
    'measured MB',
    'delivery MB/s',
    'ratio',
  ];
  const rows = cases.map((c) => [
    `${c.world}`,
    `${c.sizeMiB}`,
    c.dtype,
    `${c.iters}`,
    fmt(c.timeMs.median, 1),
    fmt(c.timeMs.min, 1),
    fmt(c.timeMs.max, 1),
    fmt(c.algbw / MB, 0),
    fmt(c.busbw / MB, 0),
    fmt(c.deliveredBytesPerOp / MB, 1),
    fmt(c.measuredDeliveredBytesPerOp / MB, 1),
    fmt(c.deliveryRate / MB, 0),
    fmt(c.ratio, 2),
  ]);
  lines.push(...table(header, rows, [2]));
  return lines.join('\n');
}

function fmt(x, digits) {
  return x.toFixed(digits);
}
