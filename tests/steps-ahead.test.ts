// Steps sent ahead (job spec `stepsAhead`): the coordinator keeps up to that many steps outstanding,
// so workers start the next step without a round trip to it, and never more, so a restarted
// coordinator still resumes at a checkpointed sample. The coordinator's intake of reports is slowed
// here (each report reaches it 150 ms late) so the workers really are ahead of its acknowledgements:
// a worker killed then must still leave every sample trained once per epoch.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Msg } from '@nats-io/transport-node';
import { startLocalCluster, type JobSummary } from 'tfjs-ddp';
import {
  commandSchema,
  connectNats,
  decodeMessage,
  jobSubjects,
  reportSchema,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { ControlPlane } from '../packages/coordinator/src/control.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { fashionSubset, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { expectSameBits } from './support/collective-ranks.js';
import { uncoveredOrRepeated } from './support/coverage.js';

const TRAIN = 2000;
const BATCH = 100;
const EPOCHS = 2;
const INTAKE_DELAY_MS = 150;

/** What an observer on the job's subjects sees: the generation's members, and per worker the last step it reported done. */
interface Watch {
  /** The newest generation's members, in rank order. */
  members: string[];
  reported: Map<string, number>;
  close(): Promise<void>;
}

async function watchJob(url: string, job: string): Promise<Watch> {
  const nc: NatsConnection = await connectNats({ servers: [url], name: 'steps-ahead-observer' });
  const subjects = jobSubjects(job);
  const watch: Watch = {
    members: [],
    reported: new Map(),
    close: () => nc.drain(),
  };
  nc.subscribe(subjects.control, {
    callback: (_err, m) => {
      const r = decodeMessage(commandSchema, m.data, { maxBytes: 1 << 24, job });
      if (!r.ok) return;
      if (r.value.type === 'generation') watch.members = [...r.value.members];
    },
  });
  nc.subscribe(subjects.report, {
    callback: (_err, m) => {
      const r = decodeMessage(reportSchema, m.data, { maxBytes: 1 << 24, job });
      if (r.ok && r.value.type === 'stepDone') {
        const { workerId, step } = r.value;
        watch.reported.set(workerId, Math.max(watch.reported.get(workerId) ?? -1, step));
      }
    },
  });
  await nc.flush();
  return watch;
}

describe('steps sent ahead of the coordinator', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let data: { train: { images: string; labels: string }; test: { images: string; labels: string } };
  const original = ControlPlane.prototype.onReport;
  const originalBroadcast = ControlPlane.prototype.broadcast;
  /** Steps the coordinator in this process committed, and the most it ever had sent and not committed. */
  const window = { committed: 0, maxOutstanding: 0 };

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('steps-ahead');
    data = { train: await fashionSubset(dir.path, 'train', TRAIN), test: await fashionSubset(dir.path, 't10k', 500) };
    // Every report reaches the coordinator late, in the order it came: its acknowledgements lag the workers.
    ControlPlane.prototype.onReport = function (this: ControlPlane, m: Msg) {
      setTimeout(() => original.call(this, m), INTAKE_DELAY_MS);
    };
    // Counted where the coordinator sends, not by an observer that hears the commands later.
    ControlPlane.prototype.broadcast = function (this: ControlPlane, cmd) {
      if (cmd.type === 'step') window.maxOutstanding = Math.max(window.maxOutstanding, cmd.step + 1 - window.committed);
      return originalBroadcast.call(this, cmd);
    };
  });
  afterAll(async () => {
    ControlPlane.prototype.onReport = original;
    ControlPlane.prototype.broadcast = originalBroadcast;
    await nats?.stop();
    await dir?.remove();
  });

  let cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  function job(name: string, stepsAhead: number): Promise<string> {
    return writeJob(dir.path, name, {
      name,
      model: { zoo: 'mlp' },
      data: { train: { type: 'idx', ...data.train }, test: { type: 'idx', ...data.test } },
      optimizer: { type: 'adam', learningRate: 0.002 },
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
      batchSize: BATCH,
      epochs: EPOCHS,
      seed: 5,
      hashCheckEvery: 1,
      stepsAhead,
      workers: { min: 2, max: 3 },
      faults: { heartbeatTimeoutMs: 1500, rejoinTimeoutMs: 20000 },
      output: join(dir.path, 'out', name),
    });
  }

  /**
   * Runs `name` on `workers` worker processes; after every step the coordinator commits, `during`
   * sees how many it committed and the observer's view. Returns the summary and the most steps
   * ever outstanding (sent, not yet committed).
   */
  async function run(
    name: string,
    stepsAhead: number,
    workers: number,
    during?: (committed: number, watch: Watch, cluster: Awaited<ReturnType<typeof startLocalCluster>>) => void,
  ): Promise<{ summary: JobSummary; maxOutstanding: number }> {
    const path = await job(name, stepsAhead);
    const watch = await watchJob(nats.url, name);
    cleanup.push(() => watch.close());
    const cluster = await startLocalCluster({ job: path, workers, nats: nats.url, onWorkerOutput: () => {} });
    cleanup.push(() => cluster.stop());
    Object.assign(window, { committed: 0, maxOutstanding: 0 });
    cluster.events.on('progress', (p) => {
      // Steps 0 .. globalStep - 1 are committed; every step sent after them is outstanding.
      window.committed = p.globalStep;
      during?.(p.globalStep, watch, cluster);
    });
    const summary = await cluster.result();
    return { summary, maxOutstanding: window.maxOutstanding };
  }

  it('keeps stepsAhead steps outstanding and never more; 1 is lockstep', async () => {
    const ahead = await run('ahead-4', 4, 2);
    expect(uncoveredOrRepeated(ahead.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    // With the intake slowed the window fills: 4 sent and not committed, never 5.
    expect(ahead.maxOutstanding).toBe(4);
    const lockstep = await run('ahead-1', 1, 2);
    expect(lockstep.maxOutstanding).toBe(1);
    expect(uncoveredOrRepeated(lockstep.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    // The same updates in the same order, whatever the window: the same parameters to the bit.
    expectSameBits(
      await savedWeights(join(ahead.summary.output, 'model')),
      await savedWeights(join(lockstep.summary.output, 'model')),
      'stepsAhead 4 against lockstep',
    );
  }, 180_000);

  it('a worker killed while the others are ahead of the acknowledgements: every sample once per epoch', async () => {
    let killed: { committed: number; survivorsAt: number } | undefined;
    const { summary } = await run('ahead-kill', 4, 3, (committed, watch, cluster) => {
      if (killed || committed < 6 || watch.members.length !== 3) return;
      // The survivors (ranks 0 and 2) reported steps the coordinator has not acknowledged yet.
      const survivors = [0, 2].map((r) => watch.reported.get(watch.members[r]) ?? -1);
      const survivorsAt = Math.min(...survivors);
      if (survivorsAt >= committed + 1) {
        killed = { committed, survivorsAt };
        cluster.killWorker(1);
      }
    });
    // Set only when, steps 0 .. committed - 1 acknowledged, both survivors had reported step committed + 1.
    expect(killed, 'the survivors never got ahead of the coordinator').toBeDefined();
    expect(summary.worldSize).toBe(2);
    expect(summary.abortedSteps).toBeGreaterThanOrEqual(1);
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
    expect(summary.steps).toBe(EPOCHS * (TRAIN / BATCH));
  }, 180_000);
});
