import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { connectNats, maxPayload } from '@tfjs-ddp/common';
import { startNats } from './support/nats.js';

const COMMON_DIST = new URL('../packages/common/dist/index.js', import.meta.url).href;

/** Whether the process runs (a zombie, killed but not yet reaped by its new parent, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: kill(0) is all there is
  }
}

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

  it('stops a server whose starting process is SIGKILLed (tfjs-ddp local, a killed test run), and removes its directory', async () => {
    // The process that starts the server gets no chance to run exit hooks.
    const script =
      `const { startNatsServer } = await import(${JSON.stringify(COMMON_DIST)});` +
      `const s = await startNatsServer({ jetstream: false });` +
      `process.stdout.write(JSON.stringify({ pid: s.pid, url: s.url, dir: s.dir }) + '\\n');` +
      `setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let serverPid: number | undefined;
    try {
      const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
      const started = JSON.parse(line.toString()) as { pid: number; url: string; dir: string };
      serverPid = started.pid;
      const nc = await connectNats({ servers: [started.url] });
      await nc.close();
      expect(alive(serverPid)).toBe(true);
      expect(existsSync(started.dir)).toBe(true);
      owner.kill('SIGKILL');
      const deadline = Date.now() + 5_000;
      while (alive(serverPid) && Date.now() < deadline) await sleep(50);
      expect(alive(serverPid), `nats-server ${serverPid} outlived the process that started it`).toBe(false);
      const gone = Date.now() + 5_000;
      while (existsSync(started.dir) && Date.now() < gone) await sleep(50);
      expect(existsSync(started.dir), `${started.dir} outlived the process that started its server`).toBe(false);
    } finally {
      owner.kill('SIGKILL');
      if (serverPid !== undefined && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });
});
