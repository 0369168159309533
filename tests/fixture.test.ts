import { describe, expect, it } from 'vitest';
import { connectNats, maxPayload } from '@tfjs-ddp/common';
import { startNats } from './support/nats.js';

describe('NATS test fixture', () => {
  it('starts a real server whose max_payload the client reads, and stops it', async () => {
    const nats = await startNats({ maxPayload: 4 * 1024 * 1024 });
    try {
      const nc = await connectNats({ servers: [nats.url] });
      expect(maxPayload(nc)).toBe(4 * 1024 * 1024);
      await nc.close();
    } finally {
      await nats.stop();
    }
    await expect(connectNats({ servers: [nats.url], timeoutMs: 500, maxReconnectAttempts: 0 })).rejects.toThrow(
      /cannot connect to NATS/,
    );
  });

  it('says how to install nats-server when the binary is missing', async () => {
    const prev = process.env.TFJS_DDP_NATS_SERVER;
    process.env.TFJS_DDP_NATS_SERVER = '/nonexistent/nats-server';
    try {
      await expect(startNats({ binaryOnly: true })).rejects.toThrow(/apt-get install -y nats-server/);
    } finally {
      if (prev === undefined) delete process.env.TFJS_DDP_NATS_SERVER;
      else process.env.TFJS_DDP_NATS_SERVER = prev;
    }
  });
});
