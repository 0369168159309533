// The baseline every all-reduce figure is compared with: raw NATS publish -> subscribe
// bandwidth, one publisher process to one subscriber process through the benchmark's server,
// timed at the subscriber from the arrival of the first message to the arrival of the last.
import { Peer } from './peer.mjs';

const RAW_PEER = new URL('./raw-peer.mjs', import.meta.url);

/**
 * @param {string} url  the NATS server
 * @param {{ totalBytes: number, chunkBytes: number, repeats: number, progress: (line: string) => void }} o
 * @returns {Promise<{ runs: number[] }>}  bytes per second of each run
 */
export async function measureRawBandwidth(url, { totalBytes, chunkBytes, repeats, progress }) {
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
