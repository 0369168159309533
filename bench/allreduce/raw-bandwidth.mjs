// The baseline every all-reduce figure is compared with: raw NATS publish -> subscribe
// bandwidth, one publisher process to one subscriber process through the benchmark's server,
// timed at the subscriber from the arrival of the first message to the arrival of the last.
import { chunkElementsFor, connectNats, maxPayload, natsCollectiveOptionsSchema } from '@tfjs-ddp/common';
import { Peer } from './peer.mjs';
import { median } from './stats.mjs';

const RAW_PEER = new URL('./raw-peer.mjs', import.meta.url);
const MIB = 2 ** 20;
/** The max_payload the all-reduce benchmarks start their nats-server with. */
export const MAX_PAYLOAD = 8 * MIB;
const REPEATS_EACH_SIDE = 3;

/**
 * Reads the server's max_payload, derives the chunk size the ranks will use and measures the raw
 * bandwidth once before the cases; `finish()` measures it again after them. Both halves go into the
 * baseline, so a change in machine load during the run shows up in its spread instead of silently
 * skewing every ratio.
 * @param {string} url  the NATS server
 * @param {number} rawMiB  MiB sent per raw run
 * @param {(line: string) => void} progress
 */
export async function startRawBaseline(url, rawMiB, progress) {
  const probe = await connectNats({ servers: [url], name: 'bench-probe' });
  const serverMaxPayload = maxPayload(probe);
  await probe.close();
  const chunkBytes = collectiveChunkBytes(serverMaxPayload);
  const options = { totalBytes: rawMiB * MIB, chunkBytes, repeats: REPEATS_EACH_SIDE };
  const before = await measureRawBandwidth(url, { ...options, progress: (l) => progress(`before: ${l}`) });
  return {
    serverMaxPayload,
    chunkBytes,
    /** @returns {Promise<{ totalBytes: number, chunkBytes: number, bytesPerSecond: number, runs: number[] }>} */
    async finish() {
      const after = await measureRawBandwidth(url, { ...options, progress: (l) => progress(`after: ${l}`) });
      const runs = [...before.runs, ...after.runs];
      return { totalBytes: options.totalBytes, chunkBytes, bytesPerSecond: median(runs), runs };
    },
  };
}

/** The f32 chunk size the ranks use: the collective's default chunkBytes, capped by max_payload. */
function collectiveChunkBytes(serverMaxPayload) {
  const defaults = natsCollectiveOptionsSchema.parse({ job: 'bench', generation: 0, rank: 0, worldSize: 1 });
  return chunkElementsFor(defaults.chunkBytes, serverMaxPayload, 'f32') * 4;
}

/**
 * @param {string} url  the NATS server
 * @param {{ totalBytes: number, chunkBytes: number, repeats: number, progress: (line: string) => void }} o
 * @returns {Promise<{ runs: number[] }>}  bytes per second of each run
 */
async function measureRawBandwidth(url, { totalBytes, chunkBytes, repeats, progress }) {
  const subscriber = new Peer('raw subscriber', RAW_PEER, [url, 'subscriber']);
  const publisher = new Peer('raw publisher', RAW_PEER, [url, 'publisher']);
  try {
    await Promise.all([subscriber.next('ready', 30_000), publisher.next('ready', 30_000)]);
    const runs = [];
    for (let i = 0; i < repeats; i++) {
      subscriber.send({ type: 'listen', totalBytes });
      await subscriber.next('listening', 30_000);
      publisher.send({ type: 'publish', totalBytes, chunkBytes });
      const [received] = await Promise.all([
        subscriber.next('received', 300_000),
        publisher.next('published', 300_000),
      ]);
      // The clock starts when the first message has fully arrived, so its bytes are not counted.
      const rate = ((received.bytes - received.firstBytes) / received.ms) * 1000;
      runs.push(rate);
      progress(`raw NATS pub->sub run ${i + 1}/${repeats}: ${(rate / 1e6).toFixed(0)} MB/s`);
    }
    return { runs };
  } finally {
    await Promise.all([subscriber.stop(), publisher.stop()]);
  }
}
