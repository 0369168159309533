// Commands from the coordinator arrive on a subscription callback; the worker handles them one at a
// time, in arrival order, so a step never overlaps the next command. The queue is bounded in commands
// and bytes, so a flood (forged, or stale commands of old generations) cannot grow it without end.
// When it is full it first drops what the worker would skip anyway: commands of a generation it is
// neither in nor about to join (a queued generation command), and a generation, hello or abort that
// a later one of its kind supersedes. A command the worker would run that still does not fit is an
// overflow, which push reports: a protocol violation the worker fails its step for. A stop, an abort
// or a generation that is not superseded is never dropped; nothing after a stop is queued.
import type { Command } from '@tfjs-ddp/common';

export interface CommandQueueLimits {
  /** Commands held at most. */
  maxCommands: number;
  /** Bytes (of the messages they came in) held at most. */
  maxBytes: number;
}

/**
 * The coordinator sends a handful of commands between two steps, and a checkpoint load a chunk per
 * command at the pace the worker takes them; these bounds leave room for far more, and for the
 * largest max_payload a few times over.
 */
export const COMMAND_QUEUE_LIMITS: CommandQueueLimits = { maxCommands: 1024, maxBytes: 128 * 1024 * 1024 };

interface Entry {
  cmd: Command;
  bytes: number;
}

/** Commands that steer the worker's membership or end it: kept unless a later one supersedes them. */
const ESSENTIAL = new Set<Command['type']>(['stop', 'abort', 'generation', 'hello']);

/** Kept whatever their generation: they have none, or they change it. */
function alwaysKept(cmd: Command): cmd is Extract<Command, { type: 'generation' | 'hello' | 'stop' }> {
  return cmd.type === 'generation' || cmd.type === 'hello' || cmd.type === 'stop';
}

export class CommandQueue {
  private items: Entry[] = [];
  private held = 0;
  private wake?: () => void;
  private closed = false;
  private stopped = false;

  /** `generation()` is the generation the worker is in now: its commands are never stale. */
  constructor(
    private readonly limits: CommandQueueLimits,
    private readonly generation: () => number,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Bytes of the commands held. */
  get bytes(): number {
    return this.held;
  }

  /**
   * Queues `cmd` (which came in a message of `bytes` bytes). Returns undefined, or, on an overflow,
   * what was dropped that the worker would have run.
   */
  push(cmd: Command, bytes: number): string | undefined {
    if (this.stopped || this.closed) return undefined;
    if (!this.fits(bytes)) this.dropSkippable();
    if (!this.fits(bytes)) this.dropSuperseded();
    let overflow: string | undefined;
    if (!this.fits(bytes)) {
      // One the worker would skip is dropped like those before it, not an overflow.
      if (!alwaysKept(cmd) && !this.live().has(cmd.gen)) return undefined;
      const full = this.describeFull();
      if (!ESSENTIAL.has(cmd.type)) return `${full}: a ${cmd.type} command did not fit`;
      // Room for the command that must not be lost, at the cost of the ones of the failed step.
      const dropped: Command['type'][] = [];
      while (!this.fits(bytes)) {
        const i = this.items.findIndex((e) => !ESSENTIAL.has(e.cmd.type));
        if (i < 0) break;
        dropped.push(this.items[i].cmd.type);
        this.remove(i);
      }
      overflow = `${full}: dropped ${dropped.length} queued command(s) (${[...new Set(dropped)].join(', ')}) for a ${cmd.type}`;
    }
    this.items.push({ cmd, bytes });
    this.held += bytes;
    if (cmd.type === 'stop') this.stopped = true;
    this.wake?.();
    return overflow;
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Command> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) {
        this.held -= next.bytes;
        yield next.cmd;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }

  private fits(bytes: number): boolean {
    return this.items.length + 1 <= this.limits.maxCommands && this.held + bytes <= this.limits.maxBytes;
  }

  private describeFull(): string {
    return (
      `the command queue is full (${this.items.length} commands, ${this.held} bytes; at most ` +
      `${this.limits.maxCommands} and ${this.limits.maxBytes})`
    );
  }

  /** Commands of a generation the worker neither is in nor will join from the queue: it would skip them. */
  private dropSkippable(): void {
    const live = this.live();
    this.keep((e) => alwaysKept(e.cmd) || live.has(e.cmd.gen));
  }

  /** The generation the worker is in and those it will join from the queue. */
  private live(): Set<number> {
    const live = new Set([this.generation()]);
    for (const e of this.items) if (e.cmd.type === 'generation') live.add(e.cmd.gen);
    return live;
  }

  /** A generation, hello or abort (of the same generation) followed by a newer one of its kind. */
  private dropSuperseded(): void {
    const later = new Set<string>();
    const kept: Entry[] = [];
    for (let i = this.items.length - 1; i >= 0; i--) {
      const e = this.items[i];
      const c = e.cmd;
      const kind = c.type === 'abort' ? `abort ${c.gen}` : c.type === 'generation' || c.type === 'hello' ? c.type : '';
      if (kind && later.has(kind)) {
        this.held -= e.bytes;
        continue;
      }
      if (kind) later.add(kind);
      kept.push(e);
    }
    this.items = kept.reverse();
  }

  private keep(predicate: (e: Entry) => boolean): void {
    const kept = this.items.filter(predicate);
    if (kept.length === this.items.length) return;
    this.items = kept;
    this.held = kept.reduce((n, e) => n + e.bytes, 0);
  }

  private remove(i: number): void {
    this.held -= this.items[i].bytes;
    this.items.splice(i, 1);
  }
}
