// The coordinator's HTTP endpoint: GET /status describes the running job, /healthz answers, /readyz
// is ready while training; it listens on the address asked for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, type TempDir } from './support/jobs.js';

describe('GET /status', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('status');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  it('shows the job, its progress and the world while it trains', async () => {
    const cluster = await startLocalCluster({
      job: 'examples/jobs/linear.yaml',
      workers: 2,
      nats: nats.url,
      output: dir.path,
      statusAddr: '127.0.0.1:0',
      onWorkerOutput: () => {},
    });
    const seen: Promise<{ status: Record<string, unknown>; healthz: number; readyz: number }> = new Promise(
      (resolve, reject) => {
        cluster.events.once('progress', () => {
          const base = `http://${cluster.statusAddress()}`;
          Promise.all([fetch(`${base}/status`), fetch(`${base}/healthz`), fetch(`${base}/readyz`)])
            .then(async ([s, h, r]) =>
              resolve({ status: (await s.json()) as Record<string, unknown>, healthz: h.status, readyz: r.status }),
            )
            .catch(reject);
        });
      },
    );
    // A job that fails (or ends) before its first step fails the test at once instead of leaving it waiting.
    const endedFirst = cluster.result().then(() => {
      throw new Error('expected a progress event while training, got the end of the job first');
    });
    endedFirst.catch(() => {});
    try {
      const { status, healthz, readyz } = await Promise.race([seen, endedFirst]);
      expect(status.job).toBe('linear');
      expect(status.state).toBe('training');
      expect(status.worldSize).toBe(2);
      expect(status.members).toEqual(['local-0', 'local-1']);
      expect(healthz).toBe(200);
      expect(readyz).toBe(200);
      await cluster.result();
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
