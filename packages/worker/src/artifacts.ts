// Ships files to the coordinator over NATS, in chunks that fit the server's max_payload, so the
// coordinator can write them wherever the job's output lives: the trained model and checkpoint states.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeMessage,
  maxPayload,
  reportSchema,
  splitChunks,
  type NatsConnection,
  type TrainableModel,
} from '@tfjs-ddp/common';

/** What a shipment answers: the command (`id`) of generation `gen` that asked for it, and who sends it where. */
export interface Shipment {
  subject: string;
  job: string;
  workerId: string;
  gen: number;
  id: number;
}

export async function shipFiles(
  nc: NatsConnection,
  shipment: Shipment,
  files: { name: string; data: Uint8Array }[],
): Promise<{ name: string; bytes: number }[]> {
  const { subject, job, workerId, gen, id } = shipment;
  const limit = maxPayload(nc);
  for (const { name, data } of files) {
    const chunks = splitChunks(data, limit);
    for (let index = 0; index < chunks.length; index++) {
      nc.publish(
        subject,
        encodeMessage(reportSchema, {
          type: 'artifact',
          job,
          workerId,
          gen,
          id,
          name,
          index,
          total: chunks.length,
          data: chunks[index],
        }),
      );
      await nc.flush();
    }
  }
  return files.map((f) => ({ name: f.name, bytes: f.data.length }));
}

export async function shipModel(
  nc: NatsConnection,
  shipment: Shipment,
  model: TrainableModel,
): Promise<{ name: string; bytes: number }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-model-'));
  try {
    await model.save(dir);
    const names = (await readdir(dir)).sort();
    const files = await Promise.all(
      names.map(async (name) => ({ name, data: new Uint8Array(await readFile(join(dir, name))) })),
    );
    return await shipFiles(nc, shipment, files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
