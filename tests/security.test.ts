// NATS authentication reaches every process of a job: with the right credentials a local cluster
// trains against a server that requires them; without them the job fails saying so.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { startNatsServer, type NatsServerHandle } from '@tfjs-ddp/common';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

describe('a NATS server that requires a user and password', () => {
  let server: NatsServerHandle;
  let dir: TempDir;
  let job: string;
  beforeAll(async () => {
    server = await startNatsServer({ auth: { user: 'ddp', password: 's3cret-pw' } });
    dir = await tempDir('security');
    job = await writeJob(dir.path, 'secured', {
      name: 'secured',
      model: { zoo: 'linear' },
      data: { train: { type: 'synthetic-linear', n: 400, w: [1, -2], b: 0.5, noise: 0.01, seed: 1 } },
      optimizer: { type: 'sgd', learningRate: 0.05 },
      loss: 'mse',
      batchSize: 20,
      epochs: 2,
      workers: { min: 2, max: 2 },
      output: join(dir.path, 'out'),
    });
  });
  afterAll(async () => {
    await server?.stop();
    await dir?.remove();
  });

  it('trains when the credentials are given (coordinator by option, workers by environment)', async () => {
    const cluster = await startLocalCluster({
      job,
      workers: 2,
      nats: server.url,
      natsOptions: { user: 'ddp', pass: 's3cret-pw' },
      onWorkerOutput: () => {},
    });
    const summary = await cluster.result().finally(() => cluster.stop());
    expect(summary.steps).toBe(40);
  }, 60_000);

  it('fails with a message about the credentials when they are missing', async () => {
    const cluster = await startLocalCluster({ job, workers: 2, nats: server.url, onWorkerOutput: () => {} });
    await expect(cluster.result().finally(() => cluster.stop())).rejects.toThrow(
      /cannot connect to NATS.*(credentials|[Aa]uthorization)/,
    );
  }, 60_000);
});
