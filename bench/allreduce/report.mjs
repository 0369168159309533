// Renders the benchmark's results: aligned plain-text tables (the cases, then what each server
// delivered and the CPU it used) with a header saying how every column was measured, or the same
// content as one JSON document.
import { table } from '../table.mjs';
import { DELIVERY_FORMULA } from './stats.mjs';

const MB = 1e6;
const MIB = 2 ** 20;

export const TIMING_METHOD =
  'each rank times its own allReduce call, started right after a barrier; an iteration takes the slowest rank';

const PER_SERVER_METHOD =
  'per server: out = message bytes the server sent (its /varz out_bytes) over the case divided by the ' +
  "all-reduces run (warm-up included); delivery = out / t; share = out / the servers' out together; routes = " +
  "bytes over its routes to other servers (its /routez, in + out) per all-reduce; CPU = the server process's " +
  "CPU time over the case / the case's wall time, in % of one core (from /proc; 'v' marks the server's own /varz sample); " +
  'CPU ms = its CPU time per all-reduce; MB/CPU-s = out / CPU time, what the server delivers per second of one core of its own; ' +
  "the all row adds the servers and gives the rank processes' CPU ms per all-reduce beside them (ranks ms)";

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
        measuredDeliveredBytesPerOp: 'sum over ranks of the bytes their NATS connections received during the call',
        ratio: 'deliveryRate / raw.bytesPerSecond',
        servers:
          'K: nats-servers of the case, a local cluster with routes when K > 1; shard s goes through server s mod K',
        perServer: PER_SERVER_METHOD,
      },
    },
    null,
    2,
  );
}

/** @param {object} run */
export function toText(run) {
  const { machine, server, clusters, raw, cases, warmup } = run;
  const lines = [
    `tfjs-ddp NATS all-reduce benchmark, ${machine.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}`,
    `versions: node ${machine.node}, nats-server ${machine.natsServer}`,
    `load average (1 min): ${run.load.before.toFixed(2)} before the run, ${run.load.after.toFixed(2)} after`,
    `servers: max_payload ${server.maxPayload} B; chunk ${server.chunkBytes} B; ranks are separate processes, ` +
      'each with one NATS connection to each server of its case',
    ...clusters.map(
      (c) =>
        `  K=${c.servers}: ${c.urls.join(', ')}${c.servers > 1 ? ' (a cluster with routes; shard s through server s mod K)' : ''}`,
    ),
    `units: size in MiB = 2^20 B of fp32; MB = 10^6 B; MB/s = 10^6 B/s; ms = milliseconds`,
    `time: ${TIMING_METHOD}; median, min and max over the timed iterations, after ${warmup} warm-up all-reduces`,
    'algbw = S/t, busbw = algbw*2(N-1)/N (NCCL-tests definitions), S = fp32 buffer bytes, N = world size',
    DELIVERY_FORMULA,
    'measured = sum over ranks of the bytes their NATS connections received during the call (payload + NATS headers)',
    `raw NATS pub->sub: ${fmt(raw.bytesPerSecond / MB, 0)} MB/s through one server (${server.url}), the median of ${raw.runs.length} runs ` +
      `(${raw.runs.map((r) => fmt(r / MB, 0)).join(', ')} MB/s; half before the cases, half after; ` +
      `one publisher process -> one subscriber process, ${raw.totalBytes / MIB} MiB in ${raw.chunkBytes} B messages, ` +
      'timed at the subscriber from first to last message)',
    'ratio = delivery / raw; raw is a single stream, and the server writes to several ranks at once, so a ratio above 1 is possible',
    '',
  ];
  const header = [
    'K',
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
    `${c.servers}`,
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
  lines.push(...table(header, rows, [3]));
  lines.push('', PER_SERVER_METHOD, '');
  const serverHeader = [
    'K',
    'N',
    'size MiB',
    'dtype',
    'server',
    'out MB',
    'share',
    'delivery MB/s',
    'vs raw',
    'routes MB',
    'CPU %',
    'CPU ms',
    'MB/CPU-s',
    'ranks ms',
  ];
  const serverRows = [];
  for (const c of cases) {
    const total = c.perServer.reduce((sum, s) => sum + s.deliveredBytesPerOp, 0);
    const key = [`${c.servers}`, `${c.world}`, `${c.sizeMiB}`, c.dtype];
    for (const [i, s] of c.perServer.entries()) {
      serverRows.push([
        ...key,
        `${i + 1}`,
        fmt(s.deliveredBytesPerOp / MB, 1),
        fmt(s.deliveredBytesPerOp / total, 2),
        fmt(s.deliveryRate / MB, 0),
        fmt(s.ratio, 2),
        fmt(s.routeBytesPerOp / MB, 2),
        `${fmt(s.cpuPercent, 0)}${s.cpuFrom === 'varz' ? ' v' : ''}`,
        s.cpuSecondsPerOp === undefined ? '-' : fmt(s.cpuSecondsPerOp * 1000, 1),
        s.cpuSecondsPerOp ? fmt(s.deliveredBytesPerOp / s.cpuSecondsPerOp / MB, 0) : '-',
        c.perServer.length > 1 || c.rankCpuSecondsPerOp === undefined ? '' : fmt(c.rankCpuSecondsPerOp * 1000, 0),
      ]);
    }
    if (c.perServer.length > 1) {
      const rate = c.perServer.reduce((sum, s) => sum + s.deliveryRate, 0);
      const cpu = c.perServer.reduce((sum, s) => sum + s.cpuPercent, 0);
      const cpuMs = c.perServer.every((s) => s.cpuSecondsPerOp !== undefined)
        ? c.perServer.reduce((sum, s) => sum + s.cpuSecondsPerOp, 0) * 1000
        : undefined;
      serverRows.push([
        ...key,
        'all',
        fmt(total / MB, 1),
        '1.00',
        fmt(rate / MB, 0),
        fmt(rate / raw.bytesPerSecond, 2),
        '',
        fmt(cpu, 0),
        cpuMs === undefined ? '-' : fmt(cpuMs, 1),
        cpuMs ? fmt(total / (cpuMs / 1000) / MB, 0) : '-',
        c.rankCpuSecondsPerOp === undefined ? '-' : fmt(c.rankCpuSecondsPerOp * 1000, 0),
      ]);
    }
  }
  lines.push(...table(serverHeader, serverRows, [3]));
  return lines.join('\n');
}

function fmt(x, digits) {
  return x.toFixed(digits);
}
