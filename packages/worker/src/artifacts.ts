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

export async function shipFiles(
  nc: NatsConnection,
  subject: string,
  job: string,
  workerId: string,
  id: number,
  files: { name: string; data: Uint8Array }[],
): Promise<{ name: string; bytes: number }[]> {
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
    const files = await Promise.all(
      names.map(async (name) => ({ name, data: new Uint8Array(await readFile(join(dir, name))) })),
    );
    return await shipFiles(nc, subject, job, workerId, id, files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
