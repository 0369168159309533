// `tfjs-ddp local --secure`: the nats-server it starts has role users, each process holds only its
// own credential, and the job trains to completion under them while a worker's credential can
// neither stop the job nor send a chunk under another worker's id.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type LocalCluster } from 'tfjs-ddp';
import {
  commandSchema,
  connectNats,
  encodeMessage,
  jobSubjects,
  onPermissionViolation,
  type NatsConnection,
  type NatsRoleUser,
  type PermissionViolation,
} from '@tfjs-ddp/common';
import { tempDir, writeJob, type TempDir } from './support/jobs.js';

describe('tfjs-ddp local --secure', () => {
  let dir: TempDir;
  let cluster: LocalCluster | undefined;
  const connections: NatsConnection[] = [];
  beforeAll(async () => {
    dir = await tempDir('local-secure');
  });
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await cluster?.stop();
    await dir?.remove();
  });

  /** Connects as `u` and resolves with the first thing the server refuses it after `act`. */
  async function refusedAfter(
    url: string,
    u: NatsRoleUser,
    act: (nc: NatsConnection) => void,
  ): Promise<PermissionViolation> {
    const nc = await connectNats({ servers: [url], user: u.user, pass: u.password });
    connections.push(nc);
    const refused = new Promise<PermissionViolation>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the server refused nothing from ${u.user} within 5 s`)), 5_000);
      onPermissionViolation(nc, (v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
    act(nc);
    return refused;
  }

  it('trains to completion under per-worker role users; a worker credential cannot stop it or forge a peer', async () => {
    const job = await writeJob(dir.path, 'secure', {
      name: 'secure',
      model: { zoo: 'binary-mlp' },
      data: {
        train: { type: 'synthetic-binary', n: 2000, seed: 3 },
        test: { type: 'synthetic-binary', n: 200, seed: 4 },
      },
      optimizer: { type: 'adam', learningRate: 0.01 },
      loss: 'binaryCrossentropy',
      batchSize: 50,
      epochs: 2,
      workers: { min: 2, max: 2 },
      output: join(dir.path, 'out'),
    });
    cluster = await startLocalCluster({ job, workers: 2, secure: true, backend: 'cpu', onWorkerOutput: () => {} });
    const { natsUrl, natsUsers } = cluster;
    expect(natsUsers?.workers.map((w) => w.user)).toEqual(['local-0', 'local-1']);
    const running = new Promise<number>((resolve) => cluster!.events.once('progress', (p) => resolve(p.generation)));
    const generation = await running;
    const subjects = jobSubjects('secure');

    // No credential, no connection.
    await expect(connectNats({ servers: [natsUrl], maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
    // A worker's credential: a stop command is refused by the server...
    const stop = encodeMessage(commandSchema, { type: 'stop', job: 'secure', reason: 'forged', failed: true });
    const worker0 = natsUsers!.workers[0];
    await expect(refusedAfter(natsUrl, worker0, (nc) => nc.publish(subjects.control, stop))).resolves.toEqual({
      operation: 'publish',
      subject: subjects.control,
    });
    // ...and so is a chunk local-0 sends under local-1's id.
    const forged = subjects.data(generation).rs(0, 'local-1');
    await expect(refusedAfter(natsUrl, worker0, (nc) => nc.publish(forged, new Uint8Array(8)))).resolves.toEqual({
      operation: 'publish',
      subject: forged,
    });

    const summary = await cluster.result();
    expect(summary.status).toBe('completed');
    expect(summary.epochs).toHaveLength(2);
    expect(summary.steps).toBe(80);
  });
});
