// What each nats-server did during a case: the message bytes it sent (to subscribers, and over the
// routes to other servers) from its /varz and /routez counters, and the CPU its process used, from
// /proc (or, where /proc cannot be read, the percentage the server itself samples into /varz); and
// the CPU the benchmark's other children (the ranks) used meanwhile, to tell which side bounds a case.
import { serverTraffic } from '@tfjs-ddp/common';
import { childCpuSeconds } from '../compare/cpu.mjs';

/**
 * @param {import('@tfjs-ddp/common').NatsServerHandle[]} servers
 * @returns {Promise<{ at: number, traffic: import('@tfjs-ddp/common').ServerTraffic[], cpuSeconds: (number | undefined)[], childrenSeconds: number | undefined }>}
 */
export async function sampleServers(servers) {
  const traffic = await Promise.all(servers.map((s) => serverTraffic(s)));
  const cpu = childCpuSeconds();
  return {
    at: performance.now(),
    traffic,
    cpuSeconds: servers.map((s) => cpu?.get(s.pid)),
    childrenSeconds: cpu && [...cpu.values()].reduce((a, b) => a + b, 0),
  };
}

/** CPU seconds of the children other than `servers` (the rank processes) between two samples, if /proc was read. */
export function otherChildrenSeconds(before, after) {
  if (before.childrenSeconds === undefined || after.childrenSeconds === undefined) return undefined;
  if (after.cpuSeconds.some((c, i) => c === undefined || before.cpuSeconds[i] === undefined)) return undefined;
  const servers = after.cpuSeconds.reduce((sum, c, i) => sum + c - before.cpuSeconds[i], 0);
  return after.childrenSeconds - before.childrenSeconds - servers;
}

/**
 * Per server between two samples: bytes out and over routes, its CPU seconds (from /proc only) and
 * its CPU in percent of one core over the wall time between them.
 * @returns {{ outBytes: number, routeBytes: number, cpuSeconds: number | undefined, cpuPercent: number, cpuFrom: 'proc' | 'varz' }[]}
 */
export function serverUsage(before, after) {
  const wallSeconds = (after.at - before.at) / 1000;
  return after.traffic.map((t, i) => {
    const [c0, c1] = [before.cpuSeconds[i], after.cpuSeconds[i]];
    const fromProc = c0 !== undefined && c1 !== undefined;
    return {
      outBytes: t.outBytes - before.traffic[i].outBytes,
      routeBytes: t.routeBytes - before.traffic[i].routeBytes,
      cpuSeconds: fromProc ? c1 - c0 : undefined,
      cpuPercent: fromProc ? ((c1 - c0) / wallSeconds) * 100 : t.cpu,
      cpuFrom: fromProc ? 'proc' : 'varz',
    };
  });
}
