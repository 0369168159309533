// Our side of the training benchmarks: one job on a local cluster (a coordinator in this process,
// worker processes on the wasm backend with one thread each, or the backend asked for), its
// samples/s read from the summary.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { silentLogger } from '@tfjs-ddp/common';
import { startLocalCluster } from 'tfjs-ddp';

/**
 * Trains `spec` (a job spec object) on `workers` workers. `onEpoch` sees every epoch summary and
 * may return true to stop the run there (time to accuracy).
 * @returns {Promise<{ summary?: object, epochs: object[] }>}  no summary when onEpoch stopped the run
 */
export async function trainOurs({ spec, workers, dir, nats, onEpoch, progress, backend = 'wasm' }) {
  const job = join(dir, `${spec.name}.yaml`);
  await writeFile(job, stringify(spec));
  const lines = [];
  const startedAt = performance.now();
  const cluster = await startLocalCluster({
    job,
    workers,
    nats,
    backend,
    output: join(dir, spec.name),
    log: silentLogger,
    // Kept for the error message of a failed run only.
    onWorkerOutput: (worker, line) => {
      lines.push(`[${worker}] ${line}`);
      if (lines.length > 40) lines.shift();
    },
  });
  const epochs = [];
  let stop;
  const stopped = new Promise((resolve) => (stop = resolve));
  cluster.events.on('epoch', (e) => {
    epochs.push({ ...e, atSeconds: (performance.now() - startedAt) / 1000 });
    progress?.(
      `  epoch ${e.epoch}: ${Math.round(e.samplesPerSec)} samples/s${e.validation ? ` ${JSON.stringify(e.validation)}` : ''}`,
    );
    if (onEpoch?.(e)) stop();
  });
  try {
    const summary = await Promise.race([cluster.result(), stopped]);
    return { summary, epochs };
  } catch (err) {
    throw new Error(`${spec.name} on ${workers} workers failed: ${err.message}\n${lines.join('\n')}`, { cause: err });
  } finally {
    await cluster.stop();
  }
}
