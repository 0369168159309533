// The worker's command queue is bounded: a flood of commands while the worker is busy (a long step)
// cannot grow it without end. What the worker would skip goes first; a stop, an abort or a generation
// is never lost; a command the worker would run that does not fit is reported as an overflow.
import { describe, expect, it } from 'vitest';
import type { Command } from '@tfjs-ddp/common';
import { COMMAND_QUEUE_LIMITS, CommandQueue } from '../packages/worker/src/command-queue.js';

const job = 'q';
const step = (gen: number, n: number): Command => ({
  job,
  type: 'step',
  gen,
  step: n,
  epoch: 0,
  op: n,
  slices: [[0, 1]],
  globalCount: 1,
  lr: 0.1,
  hash: false,
});
const abort = (gen: number, before: number): Command => ({ job, type: 'abort', gen, reason: 'r', before });
const generation = (gen: number): Command => ({ job, type: 'generation', gen, members: ['a', 'b'], step: 0 });
const hello = (instance: string): Command => ({ job, type: 'hello', instance });
const stop: Command = { job, type: 'stop', reason: 'done', failed: false };

/** Everything queued, in order, as short labels. */
async function drain(q: CommandQueue): Promise<string[]> {
  q.close();
  const out: string[] = [];
  for await (const c of q) {
    if (c.type === 'step') out.push(`step ${c.gen}/${c.step}`);
    else if (c.type === 'abort') out.push(`abort ${c.gen}<${c.before}`);
    else if (c.type === 'generation') out.push(`generation ${c.gen}`);
    else if (c.type === 'hello') out.push(`hello ${c.instance}`);
    else out.push(c.type);
  }
  return out;
}

describe('the command queue', () => {
  it('a flood of another generation while the worker is busy stays within the bounds, and drops nothing it would run', async () => {
    const q = new CommandQueue(COMMAND_QUEUE_LIMITS, () => 3);
    expect(q.push(step(3, 1), 200)).toBeUndefined();
    let peak = 0;
    let overflows = 0;
    for (let i = 0; i < 100_000; i++) {
      if (q.push(step(999, i), 200)) overflows++;
      peak = Math.max(peak, q.length);
    }
    expect(q.push(step(3, 2), 200)).toBeUndefined();
    expect(peak).toBeLessThanOrEqual(COMMAND_QUEUE_LIMITS.maxCommands);
    expect(q.bytes).toBeLessThanOrEqual(COMMAND_QUEUE_LIMITS.maxBytes);
    expect(overflows).toBe(0);
    const got = await drain(q);
    expect(got[0]).toBe('step 3/1');
    expect(got[got.length - 1]).toBe('step 3/2');
    expect(got.length).toBeLessThanOrEqual(COMMAND_QUEUE_LIMITS.maxCommands);
  });

  it('bounds bytes as well as commands', () => {
    const q = new CommandQueue({ maxCommands: 1000, maxBytes: 10_000 }, () => 1);
    for (let i = 0; i < 1000; i++) q.push(step(7, i), 1000);
    expect(q.bytes).toBeLessThanOrEqual(10_000);
    expect(q.length).toBeLessThanOrEqual(10);
  });

  it('keeps the commands of a generation queued to be joined, dropping those of generations neither current nor coming', async () => {
    const q = new CommandQueue({ maxCommands: 4, maxBytes: 1 << 20 }, () => 1);
    q.push(step(1, 0), 1);
    q.push(generation(2), 1);
    q.push(step(5, 0), 1);
    q.push(step(2, 1), 1);
    expect(q.push(step(2, 2), 1)).toBeUndefined();
    expect(await drain(q)).toEqual(['step 1/0', 'generation 2', 'step 2/1', 'step 2/2']);
  });

  it('never loses a stop, an abort or a generation: a flood of them leaves the newest of each kind', async () => {
    const q = new CommandQueue({ maxCommands: 8, maxBytes: 1 << 20 }, () => 1);
    for (let i = 0; i < 10_000; i++) {
      q.push(abort(1, i), 100);
      q.push(hello(`i${i}`), 100);
      q.push(generation(i + 2), 100);
      expect(q.length).toBeLessThanOrEqual(8);
    }
    q.push(stop, 100);
    // Nothing after a stop is ever run: it is not even queued.
    q.push(step(1, 5), 100);
    const got = await drain(q);
    expect(got.slice(-4)).toEqual(['abort 1<9999', 'hello i9999', 'generation 10001', 'stop']);
    expect(got).not.toContain('step 1/5');
  });

  it('reports an overflow of commands it would run, and makes room for a stop at their cost', async () => {
    const q = new CommandQueue({ maxCommands: 4, maxBytes: 1 << 20 }, () => 1);
    for (let i = 0; i < 4; i++) expect(q.push(step(1, i), 10)).toBeUndefined();
    expect(q.push(step(1, 4), 10)).toBe(
      'the command queue is full (4 commands, 40 bytes; at most 4 and 1048576): a step command did not fit',
    );
    expect(q.length).toBe(4);
    // One it would skip is dropped as such, however full the queue: not an overflow.
    expect(q.push(step(9, 0), 10)).toBeUndefined();
    expect(q.push(abort(9, 3), 10)).toBeUndefined();
    expect(q.length).toBe(4);
    expect(q.push(stop, 10)).toBe(
      'the command queue is full (4 commands, 40 bytes; at most 4 and 1048576): dropped 1 queued command(s) (step) for a stop',
    );
    expect(await drain(q)).toEqual(['step 1/1', 'step 1/2', 'step 1/3', 'stop']);
  });
});
