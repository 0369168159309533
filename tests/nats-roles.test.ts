// The role configs on a real nats-server: the server itself refuses a worker credential's command
// and, with per-worker identity, a chunk sent under another member's name; clients learn of it.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from 'tfjs-ddp';
import { runWorker } from '@tfjs-ddp/worker';
import {
  clearLoadedDatasets,
  loadSource,
  putDataset,
  authorizationBlock,
  byteView,
  commandSchema,
  connectNats,
  connectServerPool,
  createCountingObserver,
  createNatsCollective,
  encodeChunkHeader,
  encodeMessage,
  generateRoleUsers,
  jobSubjects,
  onPermissionViolation,
  parseJobSpec,
  silentLogger,
  specHash,
  startNatsCluster,
  startNatsServer,
  type Collective,
  type NatsConnection,
  type NatsRoleUser,
  type NatsServerHandle,
  type PermissionViolation,
  DEPLOYMENT_ROLE_USERS,
} from '@tfjs-ddp/common';
import { expectSameBits, expectedSum, randomBuffers } from './support/collective-ranks.js';
import { writeIdxPair } from './fixtures/data/idx-files.js';

const JOB = 'roles';
const subjects = jobSubjects(JOB);
const stop = encodeMessage(commandSchema, { type: 'stop', job: JOB, reason: 'forged', failed: false });

const servers: NatsServerHandle[] = [];
const connections: NatsConnection[] = [];
afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

async function serverWith(
  users: readonly NatsRoleUser[],
  jetstream = false,
  authorization = authorizationBlock(users),
): Promise<string> {
  const server = await startNatsServer({ jetstream, authorization });
  servers.push(server);
  return server.url;
}

async function connectAs(url: string, u: NatsRoleUser | { nkeyFile: string }): Promise<NatsConnection> {
  const nc = await connectNats(
    'nkeyFile' in u ? { servers: [url], nkeyFile: u.nkeyFile } : { servers: [url], user: u.user, pass: u.password },
  );
  connections.push(nc);
  return nc;
}

/** Every permission violation the server reports to `nc`, as it arrives. */
function violationsOf(nc: NatsConnection): { seen: PermissionViolation[]; next(): Promise<PermissionViolation> } {
  const seen: PermissionViolation[] = [];
  let wake = () => {};
  onPermissionViolation(nc, (v) => {
    seen.push(v);
    wake();
  });
  return {
    seen,
    next: () =>
      new Promise((resolve, reject) => {
        const start = seen.length;
        const t = setTimeout(() => reject(new Error('the server reported no permission violation within 5 s')), 5_000);
        wake = () => {
          if (seen.length > start) {
            clearTimeout(t);
            resolve(seen[start]);
          }
        };
      }),
  };
}

/**
 * Publishes a marker after the others' messages, and waits for it in `received`: the server routed
 * or refused each of those before it, so whatever they delivered is in `received` by then.
 */
async function receivedUntilMarker(coordinator: NatsConnection, subject: string, received: string[]): Promise<void> {
  coordinator.publish(subject, new TextEncoder().encode('marker'));
  await coordinator.flush();
  const deadline = Date.now() + 5_000;
  while (!received.includes('marker') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

describe('role users (one shared worker user)', () => {
  const users = generateRoleUsers();
  let url: string;
  beforeAll(async () => {
    url = await serverWith(users.all);
  });

  it('refuses a command from a worker credential and reports it; the coordinator’s command goes through', async () => {
    const coordinator = await connectAs(url, users.coordinator);
    const worker = await connectAs(url, users.workers[0]);
    const listener = await connectAs(url, users.workers[0]);
    const received: string[] = [];
    listener.subscribe(subjects.control, {
      callback: (_e, m) => received.push(m.string() === 'marker' ? 'marker' : 'a command'),
    });
    await listener.flush();

    const refusals = violationsOf(worker);
    worker.publish(subjects.control, stop);
    expect(await refusals.next()).toEqual({ operation: 'publish', subject: subjects.control });
    await receivedUntilMarker(coordinator, subjects.control, received);
    expect(received).toEqual(['marker']);
  });

  it('lets a worker publish registration, heartbeats, reports and chunks, and refuses an observer a heartbeat', async () => {
    const coordinator = await connectAs(url, users.coordinator);
    const worker = await connectAs(url, users.workers[0]);
    const observer = await connectAs(url, users.observer);
    const received: string[] = [];
    coordinator.subscribe(`ddp.${JOB}.>`, {
      callback: (_e, m) => received.push(m.string() === 'marker' ? 'marker' : m.subject),
    });
    await coordinator.flush();
    const allowed = [subjects.register, subjects.heartbeat, subjects.report, subjects.data(1).rs(0, 'w-1')];
    for (const s of allowed) worker.publish(s, new Uint8Array(1));
    await worker.flush();
    const refusals = violationsOf(observer);
    observer.publish(subjects.heartbeat, new Uint8Array(1));
    expect(await refusals.next()).toEqual({ operation: 'publish', subject: subjects.heartbeat });
    await receivedUntilMarker(coordinator, subjects.report, received);
    expect(received).toEqual([...allowed, 'marker']);
  });
});

describe('a worker with a credential that may not register', () => {
  it('stops at once with the server’s refusal instead of waiting for a coordinator forever', async () => {
    const users = generateRoleUsers();
    const url = await serverWith(users.all);
    const spec = parseJobSpec(
      JSON.stringify({
        name: JOB,
        model: { zoo: 'binary-mlp' },
        data: { train: { type: 'synthetic-binary', n: 100, seed: 1 } },
        optimizer: { type: 'sgd', learningRate: 0.1 },
        loss: 'binaryCrossentropy',
        batchSize: 10,
        epochs: 1,
      }),
      'roles.json',
    );
    // The observer's credential, given to a worker by mistake.
    const worker = runWorker({
      spec,
      specHash: specHash(spec),
      nats: { servers: [url], user: users.observer.user, pass: users.observer.password },
      backend: 'cpu',
      workerId: 'w-0',
      log: silentLogger,
    });
    await expect(worker).rejects.toThrow(
      /cannot register with the coordinator: the NATS server refused to let this client publish to ddp\.roles\.register: .*credential of its role/,
    );
  });
});

describe('per-worker identity', () => {
  const members = ['w-0', 'w-1'];
  const users = generateRoleUsers(members);
  let url: string;
  beforeAll(async () => {
    url = await serverWith(users.all);
  });

  async function collectiveAs(user: NatsRoleUser, rank: number) {
    const observer = createCountingObserver();
    const nc = await connectAs(url, user);
    const collective = await createNatsCollective(nc, {
      job: JOB,
      generation: 1,
      rank,
      worldSize: 2,
      members,
      timeoutMs: 20_000,
      observer,
    });
    return { nc, collective, observer };
  }

  it('refuses a chunk that worker w-1 sends on w-0’s subject; the all-reduce sums only the real ones', async () => {
    const ranks = [await collectiveAs(users.workers[0], 0), await collectiveAs(users.workers[1], 1)];
    const collectives: Collective[] = ranks.map((r) => r.collective);
    try {
      const inputs = randomBuffers(2, 1_000, 8);
      const buffers = inputs.map((b) => Float32Array.from(b));
      // Rank 1 owns [500, 1000): a "contribution from rank 0" full of garbage, sent by w-1 ahead of rank 0's own.
      const forger = ranks[1].nc;
      const refusals = violationsOf(forger);
      const forgedSubject = subjects.data(1).rs(1, 'w-0');
      forger.publish(forgedSubject, byteView(new Float32Array(500).fill(1e30)), {
        headers: encodeChunkHeader({ op: 0, rank: 0, shard: 1, chunk: 0, offset: 500, count: 500, dtype: 'f32' }),
      });
      expect(await refusals.next()).toEqual({ operation: 'publish', subject: forgedSubject });
      await Promise.all(collectives.map((c, r) => c.allReduce(buffers[r])));
      const sum = expectedSum(inputs);
      buffers.forEach((b, r) => expectSameBits(b, sum, `rank ${r}`));
      expect(ranks.map((r) => [r.observer.invalidTotal(), r.observer.staleTotal()])).toEqual([
        [0, 0],
        [0, 0],
      ]);
    } finally {
      await Promise.all(collectives.map((c) => c.close()));
    }
  });

  it('fails at once, naming the refused subject, when a worker runs as a member its credential is not', async () => {
    // w-1's credential in rank 0's place: every chunk it sends as w-0 is refused by the server.
    const impostor = await collectiveAs(users.workers[1], 0);
    const peer = await collectiveAs(users.workers[1], 1);
    try {
      const results = await Promise.allSettled([
        impostor.collective.allReduce(new Float32Array(100)),
        peer.collective.allReduce(new Float32Array(100), { timeoutMs: 1_000 }),
      ]);
      expect(results[0]).toMatchObject({ status: 'rejected' });
      const reason = (results[0] as PromiseRejectedResult).reason as Error;
      expect(reason.message).toMatch(
        /allReduce op 0 \(generation 1\) failed: the NATS server refused to let this client publish to ddp\.roles\.g1\.w-0\.rs\.1: .*credential of its role/,
      );
      // The refusal ended it, not its deadline: a timeout would name the missing chunks instead.
      expect(reason.name).not.toBe('CollectiveTimeoutError');
    } finally {
      await Promise.all([impostor.collective.close(), peer.collective.close()]);
    }
  });
});

describe('per-worker identity over a cluster of 3 servers', () => {
  it('refuses the forged chunk on the server it is sent to, with the ranks connected to all three', async () => {
    const members = ['w-0', 'w-1', 'w-2'];
    const users = generateRoleUsers(members);
    const cluster = await startNatsCluster(3, { jetstream: false, authorization: authorizationBlock(users.all) });
    const pools: Awaited<ReturnType<typeof connectServerPool>>[] = [];
    const collectives: Collective[] = [];
    try {
      for (const [rank, u] of users.workers.entries()) {
        const pool = await connectServerPool({ servers: cluster.urls, user: u.user, pass: u.password });
        pools.push(pool);
        const collective = await createNatsCollective(pool, { job: JOB, generation: 4, rank, worldSize: 3, members });
        collectives.push(collective);
      }
      // w-2 forges w-0's contribution to shard 1 on every server: each refuses it.
      const forged = subjects.data(4).rs(1, 'w-0');
      const refused = pools[2].connections.map((nc) => violationsOf(nc).next());
      for (const nc of pools[2].connections) {
        nc.publish(forged, byteView(new Float32Array(10).fill(1e30)), {
          headers: encodeChunkHeader({ op: 0, rank: 0, shard: 1, chunk: 0, offset: 10, count: 10, dtype: 'f32' }),
        });
      }
      for (const r of refused) expect(await r).toEqual({ operation: 'publish', subject: forged });
      const inputs = randomBuffers(3, 30, 9);
      const buffers = inputs.map((b) => Float32Array.from(b));
      await Promise.all(collectives.map((c, r) => c.allReduce(buffers[r])));
      const sum = expectedSum(inputs);
      buffers.forEach((b, r) => expectSameBits(b, sum, `rank ${r}`));
    } finally {
      await Promise.all(collectives.map((c) => c.close()));
      await Promise.all(pools.map((p) => p.close()));
      await cluster.stop();
    }
  });
});

describe('the object store under roles', () => {
  it('lets a worker read a dataset the coordinator uploaded, and refuses the worker an upload', async () => {
    const users = generateRoleUsers();
    const url = await serverWith(users.all, true);
    const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-roles-'));
    try {
      const local = await writeIdxPair(dir, { count: 20, rows: 4, cols: 4 });
      const coordinator = await connectAs(url, users.coordinator);
      const images = await putDataset(coordinator, 'datasets', 'images.idx3', local.images);
      const labels = await putDataset(coordinator, 'datasets', 'labels.idx1', local.labels);
      clearLoadedDatasets();
      const worker = await connectAs(url, users.workers[0]);
      const loaded = await loadSource({ type: 'idx', images: images.url, labels: labels.url }, { nc: worker });
      expect(loaded.count).toBe(20);
      await expect(putDataset(worker, 'datasets', 'images.idx3', local.images)).rejects.toThrow(/permission|refused/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The authorization block of a config file, with the `$NATS_<ROLE>_PASSWORD` references made literal. */
function literalBlock(conf: string, what: string): { block: string; users: NatsRoleUser[] } {
  const block = /^authorization \{\n[\s\S]*?\n\}$/m.exec(conf)?.[0];
  if (!block) throw new Error(`no authorization block in ${what}`);
  const users = DEPLOYMENT_ROLE_USERS.map((u) => ({ ...u, password: `${u.role}-secret` }));
  const literal = DEPLOYMENT_ROLE_USERS.reduce(
    (text, u) => text.replace(u.password!, JSON.stringify(`${u.role}-secret`)),
    block,
  );
  return { block: literal, users };
}

describe('tfjs-ddp nats-auth (per-worker nkeys for a deployment)', () => {
  it('writes users that let worker-1 send chunks under its own id only, and seeds only it can read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-nats-auth-'));
    try {
      let out = '';
      const code = await runCli(['nats-auth', '--workers', '2', '--out', dir], {
        env: {},
        stdout: (t) => (out += t),
        stderr: (t) => (out += t),
      });
      expect(code, out).toBe(0);
      expect((await stat(join(dir, 'worker-1.nk'))).mode & 0o777).toBe(0o600);
      const { block, users } = literalBlock(await readFile(join(dir, 'nats-auth.conf'), 'utf8'), 'nats-auth.conf');
      const url = await serverWith([], false, block);
      const coordinator = await connectAs(url, users[0]);
      const worker1 = await connectAs(url, { nkeyFile: join(dir, 'worker-1.nk') });
      const received: string[] = [];
      coordinator.subscribe(`ddp.${JOB}.>`, {
        callback: (_e, m) => received.push(m.string() === 'marker' ? 'marker' : m.subject),
      });
      await coordinator.flush();
      const own = subjects.data(2).rs(0, 'worker-1');
      const forged = subjects.data(2).rs(1, 'worker-0');
      const refusals = violationsOf(worker1);
      worker1.publish(own, new Uint8Array(4));
      worker1.publish(forged, new Uint8Array(4));
      expect(await refusals.next()).toEqual({ operation: 'publish', subject: forged });
      worker1.publish(subjects.control, stop);
      expect(await refusals.next()).toEqual({ operation: 'publish', subject: subjects.control });
      await receivedUntilMarker(coordinator, subjects.report, received);
      expect(received).toEqual([own, 'marker']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the shipped deployment configs', () => {
  const ROOT = fileURLToPath(new URL('..', import.meta.url));
  it.each(['k8s/base/nats-auth.conf', 'deploy/nats/nats.conf'])(
    '%s: its authorization block refuses a worker’s command and passes the coordinator’s',
    async (file) => {
      // The passwords the deployment's environment would give nats-server, as literals.
      const { block, users } = literalBlock(await readFile(join(ROOT, file), 'utf8'), file);
      const url = await serverWith(users, false, block);
      const [coordinator, worker] = [await connectAs(url, users[0]), await connectAs(url, users[1])];
      const received: string[] = [];
      coordinator.subscribe(subjects.control, {
        callback: (_e, m) => received.push(m.string() === 'marker' ? 'marker' : 'a command'),
      });
      await coordinator.flush();
      const refusals = violationsOf(worker);
      worker.publish(subjects.control, stop);
      expect(await refusals.next()).toEqual({ operation: 'publish', subject: subjects.control });
      await receivedUntilMarker(coordinator, subjects.control, received);
      expect(received).toEqual(['marker']);
    },
  );
});
