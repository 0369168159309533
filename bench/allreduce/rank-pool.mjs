// One process per rank for a world size (rank.mjs), started once and driven case by case over IPC,
// so a whole sweep of sizes, dtypes and hooks pays the process and connection start-up only once.
import { Peer } from './peer.mjs';

const RANK = new URL('./rank.mjs', import.meta.url);

/**
 * @param {string | readonly string[]} urls  the NATS server, or every server of a cluster: each rank
 *   connects to each one and the collective spreads its shards over them
 * @param {number} world  number of ranks
 */
export async function startRankPool(urls, world) {
  const job = `bench-w${world}`;
  const servers = typeof urls === 'string' ? urls : urls.join(',');
  const ranks = Array.from(
    { length: world },
    (_, r) => new Peer(`rank ${r}/${world}`, RANK, [servers, job, `${r}`, `${world}`]),
  );
  try {
    await Promise.all(ranks.map((p) => p.next('ready', 60_000)));
  } catch (err) {
    await Promise.all(ranks.map((p) => p.stop()));
    throw err;
  }
  return {
    /**
     * Runs one case on every rank: the plain all-reduce with the wire `dtype`, or, given `hook` (a
     * hook spec) and `shapes` (the buffer's variables), that communication hook. Per timed
     * iteration, the time is the slowest rank's (each rank times its own call, started right after
     * a barrier) and the delivered bytes are the sum of what every rank's connections received
     * during it. A hook's result must be the same on every rank.
     * @returns {Promise<{ ms: number[], deliveredBytes: number[] }>}
     */
    async runCase({ floats, dtype, hook, shapes, warmup, iters, timeoutMs }) {
      const msg = hook
        ? { type: 'hook-case', floats, hook, shapes, warmup, iters }
        : { type: 'case', floats, dtype, warmup, iters };
      for (const p of ranks) p.send(msg);
      const results = await Promise.all(ranks.map((p) => p.next('result', timeoutMs)));
      if (hook && new Set(results.map((r) => r.digest)).size !== 1) {
        throw new Error(
          `the ranks ended with different results for ${JSON.stringify(hook)} on ${floats} floats ` +
            `(sha256 ${results.map((r, i) => `rank ${i}: ${r.digest.slice(0, 12)}`).join(', ')}); replicas would diverge`,
        );
      }
      return {
        ms: results[0].ms.map((_, i) => Math.max(...results.map((r) => r.ms[i]))),
        deliveredBytes: results[0].inBytes.map((_, i) => results.reduce((sum, r) => sum + r.inBytes[i], 0)),
      };
    },
    stop: () => Promise.all(ranks.map((p) => p.stop())),
  };
}
