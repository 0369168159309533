// The rank processes of bench:compare's compressed all-reduces for one world size, started once
// and driven case by case over IPC (the Peer of bench:allreduce), like its rank pool for the plain
// all-reduce.
import { Peer } from '../allreduce/peer.mjs';

const RANK = new URL('./hook-rank.mjs', import.meta.url);

export async function startHookPool(url, world) {
  const ranks = Array.from(
    { length: world },
    (_, r) => new Peer(`hook rank ${r}/${world}`, RANK, [url, `bench-hooks-w${world}`, `${r}`, `${world}`]),
  );
  try {
    await Promise.all(ranks.map((p) => p.next('ready', 60_000)));
  } catch (err) {
    await Promise.all(ranks.map((p) => p.stop()));
    throw err;
  }
  return {
    /**
     * Runs one case on every rank. An iteration's time is the slowest rank's, its delivered bytes
     * the sum over ranks of what their connections received; every rank must end with the same result.
     * @returns {Promise<{ ms: number[], deliveredBytes: number[] }>}
     */
    async runCase({ floats, hook, shapes, warmup, iters, timeoutMs }) {
      for (const p of ranks) p.send({ type: 'case', floats, hook, shapes, warmup, iters });
      const results = await Promise.all(ranks.map((p) => p.next('result', timeoutMs)));
      const digests = new Set(results.map((r) => r.digest));
      if (digests.size !== 1) {
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
