// A training job whose workers list every server of a 3-node NATS cluster: the all-reduce goes
// through all three, the parameters are bit for bit those of the same job on one server, and a
// server killed mid-run fails the step in flight, naming the server, which the coordinator's
// recovery redoes on the two servers left, with every sample still used once per epoch and the
// same parameters at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseJobSpec,
  poolUrls,
  serverTraffic,
  startNatsCluster,
  type NatsClusterHandle,
  type NatsServerHandle,
} from '@tfjs-ddp/common';
import type { JobSummary } from '@tfjs-ddp/coordinator';
import { uncoveredOrRepeated } from './support/coverage.js';
import { startInProcessJob } from './support/in-process.js';
import { savedWeights, tempDir, type TempDir } from './support/jobs.js';

const TRAIN = 1500;
const EPOCHS = 2;

describe('a job on a 3-node NATS cluster', () => {
  let cluster: NatsClusterHandle;
  let urls: string[];
  let dir: TempDir;
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
    urls = poolUrls(cluster.urls);
    dir = await tempDir('nats-cluster-job');
  });
  afterAll(async () => {
    await cluster?.stop();
    await dir?.remove();
  });

  const server = (url: string): NatsServerHandle => cluster.servers.find((s) => s.url === url)!;

  /**
   * Trains a small MLP on workers a, b and c, which connect to `workerUrls`; the coordinator
   * uses the first server. `atStep` runs once when the coordinator reports that step done.
   */
  async function train(
    name: string,
    workerUrls: string[],
    atStep?: { step: number; run: () => void },
  ): Promise<{ summary: JobSummary; params: Float32Array; aborted: string[] }> {
    const spec = parseJobSpec(
      JSON.stringify({
        name,
        // 4,417 parameters (2 -> 64 -> 64 -> 1): the all-reduce outweighs the control messages.
        model: { zoo: 'binary-mlp' },
        data: { train: { type: 'synthetic-binary', n: TRAIN, seed: 4, noise: 0.5 } },
        optimizer: { type: 'adam', learningRate: 0.01 },
        loss: 'binaryCrossentropy',
        batchSize: 40,
        epochs: EPOCHS,
        seed: 7,
        workers: { min: 3, max: 3 },
        output: `${dir.path}/${name}`,
      }),
      `${name}.json`,
    );
    const job = startInProcessJob(spec, urls[0], ['a', 'b', 'c'], () => ({ nats: { servers: workerUrls } }));
    const aborted: string[] = [];
    job.coordinator.on('aborted', (e: { reason: string }) => aborted.push(e.reason));
    if (atStep) {
      let done = false;
      job.coordinator.on('step', (e: { step: number }) => {
        if (e.step < atStep.step || done) return;
        done = true;
        atStep.run();
      });
    }
    const summary = await job.result();
    return { summary, params: await savedWeights(`${dir.path}/${name}/model`), aborted };
  }

  it('trains to the same bits through one server or all three, which all carry the all-reduce', async () => {
    const one = await train('on-one', [urls[0]]);
    const before = await Promise.all(urls.map((u) => serverTraffic(server(u))));
    const three = await train('on-three', urls);
    const after = await Promise.all(urls.map((u) => serverTraffic(server(u))));
    expect(three.summary.steps).toBe(one.summary.steps);
    expect(three.params).toEqual(one.params);
    // Three workers, one shard on each server: each delivers a third of the all-reduce, give or take
    // the control traffic (the coordinator is on the first).
    const delivered = after.map((t, k) => t.outBytes - before[k].outBytes);
    for (const k of [1, 2])
      expect(delivered[k] / delivered[0], `server ${k + 1} against server 1`).toBeGreaterThan(0.5);
  }, 120_000);

  it('redoes the step a killed server failed, on the two left: every sample once, the same parameters', async () => {
    const reference = await train('undisturbed', [urls[0]]);
    // The coordinator is on the first server; shards 1 and 2 travel through the others. The victim
    // is the one of those two with fewer workers' control connections, so some worker's report of
    // the failure gets through: a publish made while its connection is re-established is lost.
    let victim: NatsServerHandle | undefined;
    const kill = async () => {
      const controls = await Promise.all([1, 2].map((k) => workerControlConnections(server(urls[k]))));
      victim = server(urls[controls[0] <= controls[1] ? 1 : 2]);
      await victim.kill(true);
    };
    let killing: Promise<void> | undefined;
    const disturbed = await train('server-killed', urls, { step: 15, run: () => void (killing = kill()) });
    await killing;
    expect(victim).toBeDefined();
    expect(disturbed.summary.abortedSteps).toBeGreaterThanOrEqual(1);
    // The workers' own account of the failure, passed on by the coordinator, names the server.
    expect(disturbed.aborted[0]).toMatch(/^step \d+ failed on rank \d \(server-killed-[abc]\): allReduce op \d+ /);
    expect(disturbed.aborted[0]).toContain(`NATS server ${victim!.url} (server`);
    expect(disturbed.summary.generations.length).toBeGreaterThan(1);
    expect(uncoveredOrRepeated(disturbed.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    expect(disturbed.params).toEqual(reference.params);
    await victim!.start();
  }, 120_000);
});

/** Connections the workers' own clients (not their all-reduce pools) hold to `server`. */
async function workerControlConnections(server: NatsServerHandle): Promise<number> {
  const body = (await (await fetch(`${server.monitorUrl}/connz`)).json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).filter((c) => /^tfjs-ddp-worker-/.test(c.name ?? '') && !/ data /.test(c.name ?? ''))
    .length;
}
