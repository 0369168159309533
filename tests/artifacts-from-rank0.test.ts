// The trained model's files reach the job's output only from the rank 0 of the generation the
// coordinator asked: artifacts that answer its request but claim another generation, or come from
// another member, are ignored, whichever arrives first.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  commandSchema,
  connectNats,
  decodeMessage,
  encodeMessage,
  jobSubjects,
  parseJobSpec,
  reportSchema,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { startInProcessJob } from './support/in-process.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, type TempDir } from './support/jobs.js';

describe('artifacts', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let forger: NatsConnection;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('artifacts');
    forger = await connectNats({ servers: [nats.url], name: 'forger' });
  });
  afterAll(async () => {
    await forger?.close();
    await nats?.stop();
    await dir?.remove();
  });

  it("are taken only from the current generation's rank 0: forged ones of another generation or member are ignored", async () => {
    const name = 'artifacts';
    const spec = parseJobSpec(
      JSON.stringify({
        name,
        model: { zoo: 'linear' },
        data: { train: { type: 'synthetic-linear', n: 200, w: [2, -1], b: 0.5, seed: 1 } },
        optimizer: { type: 'sgd', learningRate: 0.05 },
        loss: 'mse',
        batchSize: 20,
        epochs: 1,
        workers: { min: 2, max: 2 },
        output: join(dir.path, name),
      }),
      `${name}.json`,
    );
    const subjects = jobSubjects(name);
    const forgedModel = new TextEncoder().encode('{"forged": true}');
    const forged: string[] = [];
    // Answers the coordinator's `save` before rank 0 can: the model files, claimed by rank 0 of the
    // generation before, and by rank 1 of the right one.
    const sub = forger.subscribe(subjects.control, {
      callback: (_err, m) => {
        const r = decodeMessage(commandSchema, m.data, { maxBytes: 1 << 20, job: name });
        if (!r.ok || r.value.type !== 'save') return;
        const { gen, id } = r.value;
        for (const [workerId, claimedGen] of [
          [`${name}-a`, gen - 1],
          [`${name}-b`, gen],
        ] as const) {
          const files = [{ name: 'model.json', bytes: forgedModel.length }];
          const common = { job: name, workerId, gen: claimedGen, id };
          forger.publish(
            subjects.report,
            encodeMessage(reportSchema, {
              ...common,
              type: 'artifact',
              name: 'model.json',
              index: 0,
              total: 1,
              data: forgedModel,
            }),
          );
          forger.publish(
            subjects.report,
            encodeMessage(reportSchema, { ...common, type: 'saved', files, predictions: [] }),
          );
          forged.push(`${workerId} gen ${claimedGen}`);
        }
      },
    });
    await forger.flush();
    try {
      const summary = await startInProcessJob(spec, nats.url, ['a', 'b']).result();
      expect(forged).toEqual([`${name}-a gen ${summary.generation - 1}`, `${name}-b gen ${summary.generation}`]);
      const modelDir = join(spec.output, 'model');
      expect((await readdir(modelDir)).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
      const modelJson = JSON.parse(await readFile(join(modelDir, 'model.json'), 'utf8'));
      expect(modelJson.forged).toBeUndefined();
      expect(modelJson.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
    } finally {
      sub.unsubscribe();
    }
  }, 60_000);
});
