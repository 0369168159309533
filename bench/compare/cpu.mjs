// CPU time of this process's children (rank processes and nats-server), read from /proc on Linux:
// how many cores a case kept busy, which tells a run bound by CPU from one waiting on the network.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let ticksPerSecond;

/** CPU seconds (user + system) of every live child process by pid; undefined where /proc is not readable. */
export function childCpuSeconds() {
  let entries;
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return undefined;
  }
  const out = new Map();
  for (const pid of entries) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command name (which may hold spaces): state, ppid, …, utime (14th), stime (15th).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) !== process.pid) continue;
    out.set(Number(pid), (Number(f[11]) + Number(f[12])) / ticksPerSecond);
  }
  return out;
}

/**
 * Runs `fn` and returns its result with the CPU seconds the server and the other children spent
 * meanwhile, and the wall seconds it took.
 */
export async function withCpu(serverPid, fn) {
  const before = childCpuSeconds();
  const t0 = performance.now();
  const result = await fn();
  const wall = (performance.now() - t0) / 1000;
  const after = childCpuSeconds();
  if (!before || !after) return { result, cpu: undefined };
  let server = 0;
  let others = 0;
  for (const [pid, s] of after) {
    const d = s - (before.get(pid) ?? 0);
    if (pid === serverPid) server += d;
    else others += d;
  }
  return { result, cpu: { server, ranks: others, wall } };
}
