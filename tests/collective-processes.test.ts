// Ranks as separate node processes, each with its own connection and event loop, running the built
// package: the broadcast of initial weights and several all-reduce steps must leave every process
// with bit-identical buffers equal to the rank-order sum (build first: npx tsc -b).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type WireDtype } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { bytesOf, expectedSum, randomBuffers } from './support/collective-ranks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}packages/common/dist/index.js`;
const script = fileURLToPath(new URL('./support/collective-rank.mjs', import.meta.url));

interface RankProcess {
  child: ChildProcess;
  /** Resolves with the next stdout line. */
  line(): Promise<string>;
}

function spawnRank(args: string[]): RankProcess {
  const child = spawn(process.execPath, [script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let partial = '';
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => void (stderr += b.toString()));
  child.stdout!.on('data', (b: Buffer) => {
    partial += b.toString();
    for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
      const l = partial.slice(0, i);
      partial = partial.slice(i + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`rank process ${args[2]} exited with ${code}:\n${stderr}`))),
  );
  exited.catch(() => {});
  return {
    child,
    line: () => {
      const next = lines.shift();
      return next !== undefined
        ? Promise.resolve(next)
        : Promise.race([new Promise<string>((r) => waiting.push(r)), exited]);
    },
  };
}

const sha = (a: Float32Array) => createHash('sha256').update(bytesOf(a)).digest('hex');

let nats: NatsFixture;
beforeAll(async () => {
  // The rank processes import the built package.
  if (!existsSync(built)) throw new Error(`${built} is missing; build it first with: npx tsc -b`);
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

describe('ranks in separate processes', () => {
  it.each([['f32'], ['bf16']] as [WireDtype][])(
    'broadcast and three %s all-reduce steps leave every process bit-identical',
    async (dtype) => {
      const worldSize = 3;
      const length = 100_003;
      const steps = 3;
      const job = `proc-${dtype}`;
      // The first server in the order the ranks sort them, where they subscribe `go`.
      const nc = await connectNats({ servers: [nats.url] });
      const ranks = [...Array(worldSize).keys()].map((r) =>
        spawnRank([nats.urls.join(','), job, String(r), String(worldSize), String(length), String(steps), dtype]),
      );
      try {
        for (const r of ranks) expect(await r.line()).toBe('READY');
        nc.publish(`test.${job}.go`);
        await nc.flush();
        const results = await Promise.all(
          ranks.map(
            async (r) => JSON.parse(await r.line()) as { rank: number; hashes: string[]; bufferAllocations: number },
          ),
        );
        const expected = [sha(randomBuffers(1, length, 1)[0])];
        for (let step = 0; step < steps; step++)
          expected.push(sha(expectedSum(randomBuffers(worldSize, length, 100 + step), dtype)));
        for (const [r, result] of results.entries()) {
          expect(result.rank).toBe(r);
          expect(result.hashes, `rank ${r}`).toEqual(expected);
          expect(result.bufferAllocations, `rank ${r} reallocated across steps`).toBe(dtype === 'f32' ? 1 : 2);
        }
      } finally {
        for (const r of ranks) r.child.kill('SIGKILL');
        await nc.close();
      }
    },
  );
});
