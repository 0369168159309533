// Ships the trained model's files to the coordinator over NATS, in chunks that fit the server's
// max_payload, so the coordinator can write them wherever the job's output lives.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage, maxPayload, reportSchema, type NatsConnection, type TrainableModel } from '@tfjs-ddp/common';

/** Room left in each message for the msgpack envelope around a chunk. */
const ENVELOPE_BYTES = 4096;

export async function shipModel(
  nc: NatsConnection,
  subject: string,
  job: string,
  workerId: string,
  id: number,
  model: TrainableModel,
): Promise<{ name: string; bytes: number }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-model-'));
  try {
    await model.save(dir);
    const names = (await readdir(dir)).sort();
    const chunk = Math.max(1024, maxPayload(nc) - ENVELOPE_BYTES);
    const files: { name: string; bytes: number }[] = [];
    for (const name of names) {
      const data = new Uint8Array(await readFile(join(dir, name)));
      const total = Math.max(1, Math.ceil(data.length / chunk));
      for (let index = 0; index < total; index++) {
        const part = data.subarray(index * chunk, Math.min(data.length, (index + 1) * chunk));
        nc.publish(
          subject,
          encodeMessage(reportSchema, { type: 'artifact', job, workerId, id, name, index, total, data: part }),
        );
        await nc.flush();
      }
      files.push({ name, bytes: data.length });
    }
    return files;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
