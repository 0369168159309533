// The worker's heartbeat thread against a real nats-server: its heartbeats keep coming while the
// main thread is blocked in synchronous work, and say for how long it has been; stopped, the thread
// is gone; a thread that cannot connect makes the start fail, saying why. The thread runs the built
// file (npx tsc -b), like every test that starts processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, decodeMessage, heartbeatSchema, silentLogger, type NatsConnection } from '@tfjs-ddp/common';
import { Heartbeats } from '../packages/worker/src/heartbeats.js';
import { startNats, type NatsFixture } from './support/nats.js';

const SUBJECT = 'ddp.hb-test.heartbeat';
const EVERY_MS = 100;

describe('the heartbeat thread', () => {
  let nats: NatsFixture;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connectNats({ servers: [nats.url] });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  function start(servers = [nats.url]) {
    return Heartbeats.start({
      nats: { servers, timeoutMs: 2_000, maxReconnectAttempts: -1, reconnectTimeWaitMs: 500 },
      subject: SUBJECT,
      job: 'hb-test',
      workerId: 'w-1',
      everyMs: EVERY_MS,
      log: silentLogger,
      state: () => ({ gen: 3, rank: 1, tensors: 7 }),
    });
  }

  it('beats while the main thread is blocked, saying for how long; stopped, it is gone', async () => {
    const beats: { blockedMs?: number; gen: number; rank: number; workerId: string }[] = [];
    const sub = nc.subscribe(SUBJECT, {
      callback: (_e, m) => {
        const r = decodeMessage(heartbeatSchema, m.data, { maxBytes: 1024, job: 'hb-test' });
        if (r.ok) beats.push(r.value);
      },
    });
    await nc.flush();
    const heartbeats = await start();
    try {
      // Beats flow; the main thread answers, so each says it was blocked at most about one period.
      while (beats.length < 3) await new Promise((r) => setTimeout(r, 20));
      expect(beats[0]).toMatchObject({ workerId: 'w-1', gen: 3, rank: 1 });
      // Blocked for 10 periods: the thread's beats go out meanwhile (they are here once the loop turns).
      const before = beats.length;
      const until = Date.now() + 10 * EVERY_MS;
      while (Date.now() < until);
      // The subscription's callbacks run now: let the beats sent during the block arrive.
      await nc.flush();
      await new Promise((r) => setTimeout(r, EVERY_MS / 2));
      const during = beats.slice(before);
      expect(during.length, JSON.stringify(during)).toBeGreaterThanOrEqual(5);
      // The last beat sent during the block saw the main thread silent for most of it.
      expect(Math.max(...during.map((b) => b.blockedMs ?? 0))).toBeGreaterThan(5 * EVERY_MS);
    } finally {
      await heartbeats.stop();
    }
    // Gone: no beat after the stop.
    const stoppedAt = beats.length;
    await new Promise((r) => setTimeout(r, 3 * EVERY_MS));
    await nc.flush();
    expect(beats.length).toBe(stoppedAt);
    sub.unsubscribe();
  });

  it('fails to start, naming the cause, when the thread cannot connect', async () => {
    await expect(start(['nats://127.0.0.1:1'])).rejects.toThrow(
      /the heartbeat thread failed: cannot open its NATS connection: .*127\.0\.0\.1:1/,
    );
  });
});
