// The worker's heartbeats, sent from a thread of their own (heartbeat-thread.ts) with its own NATS
// connection, so one long synchronous computation on the main thread (a big step on CPU, a queue of
// GPU kernels read back at once) cannot hold them back and make a live worker look lost. The main
// thread ticks the heartbeat thread every period with what a heartbeat says (generation, rank,
// tensors held); the thread sends on its own clock and adds how long the main thread has not ticked,
// so the coordinator tells a busy worker (heartbeats on, main thread blocked for a while) from a
// gone one (no heartbeats: dead, cut off, or frozen by SIGSTOP, which stops every thread).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { bundleInfo, type Logger, type NatsOptions } from '@tfjs-ddp/common';

/** What the thread is started with. */
export interface HeartbeatThreadData {
  nats: NatsOptions;
  subject: string;
  job: string;
  workerId: string;
  everyMs: number;
}

/** Main thread → heartbeat thread: a tick, with the heartbeat's contents now; or the stop. */
export type HeartbeatTick = { type: 'tick'; gen: number; rank: number; tensors: number } | { type: 'stop' };

/** Heartbeat thread → main thread. */
export type HeartbeatThreadEvent = { type: 'connected' } | { type: 'failed'; error: string };

/** `nats`: the worker's NATS options; the thread opens a connection of its own with them. */
export interface HeartbeatsOptions extends HeartbeatThreadData {
  log: Logger;
  /** The heartbeat's contents now, read on the main thread at every tick. */
  state(): { gen: number; rank: number; tensors: number };
}

/** How long a stopped thread may take to close its connection before it is terminated. */
const STOP_MS = 2_000;

/**
 * The thread's entry file: beside this module in the built package, the bundle's own entry in a
 * bundle (scripts/bundle.mjs), and the built file when this module runs from the TypeScript sources
 * (the in-process tests), where a thread cannot load TypeScript.
 */
function threadEntry(): URL {
  const bundled = bundleInfo().heartbeatThread;
  if (bundled) return pathToFileURL(bundled);
  const beside = new URL('./heartbeat-thread.js', import.meta.url);
  if (existsSync(beside)) return beside;
  const built = new URL('../dist/heartbeat-thread.js', import.meta.url);
  if (existsSync(built)) return built;
  throw new Error(
    `the worker's heartbeat thread entry ${fileURLToPath(beside)} is missing; build the packages (npx tsc -b)`,
  );
}

export class Heartbeats {
  /** Rejects when the thread fails while the worker runs: without heartbeats the coordinator drops it. */
  readonly failed: Promise<never>;
  private readonly ticker: NodeJS.Timeout;

  private constructor(
    private readonly thread: Worker,
    private readonly o: HeartbeatsOptions,
    failed: Promise<never>,
    private readonly exited: Promise<void>,
    private readonly lifecycle: { stopping: boolean },
  ) {
    this.failed = failed;
    this.tick();
    // Ticks come only while the main thread's event loop turns: their absence is what `blockedMs` measures.
    this.ticker = setInterval(() => this.tick(), o.everyMs);
    this.ticker.unref();
  }

  /** Starts the thread and waits until its connection is up; rejects saying why it could not start. */
  static async start(o: HeartbeatsOptions): Promise<Heartbeats> {
    const data: HeartbeatThreadData = {
      nats: { ...o.nats, name: `${o.nats.name ?? `tfjs-ddp-worker-${o.workerId}`}-heartbeats` },
      subject: o.subject,
      job: o.job,
      workerId: o.workerId,
      everyMs: o.everyMs,
    };
    const thread = new Worker(threadEntry(), { workerData: data, name: 'heartbeats' });
    // Never what keeps the process alive: the worker stops it on every way out, and an exit kills it.
    thread.unref();
    const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
    // Shared with the instance: once it stops the thread, the thread's exit is no failure.
    const lifecycle = { stopping: false };
    const failed = new Promise<never>((_, reject) => {
      const fail = (error: string) => {
        if (lifecycle.stopping) return;
        reject(
          new Error(
            `the heartbeat thread failed: ${error}; without heartbeats the coordinator would drop this worker, so it exits`,
          ),
        );
      };
      thread.on('message', (e: HeartbeatThreadEvent) => {
        if (e.type === 'failed') fail(e.error);
      });
      thread.on('error', (err) => fail(err.message));
      thread.on('exit', (code) => fail(`it exited with code ${code}`));
    });
    failed.catch(() => {});
    await Promise.race([
      new Promise<void>((resolve) =>
        thread.on('message', (e: HeartbeatThreadEvent) => {
          if (e.type === 'connected') resolve();
        }),
      ),
      failed,
    ]).catch(async (err: unknown) => {
      await thread.terminate();
      throw err;
    });
    o.log.info('heartbeats sent from their own thread', { everyMs: o.everyMs });
    return new Heartbeats(thread, o, failed, exited, lifecycle);
  }

  /** Stops the thread (it closes its connection); resolves once it is gone. */
  async stop(): Promise<void> {
    if (this.lifecycle.stopping) return;
    this.lifecycle.stopping = true;
    clearInterval(this.ticker);
    this.thread.postMessage({ type: 'stop' } satisfies HeartbeatTick);
    const late = setTimeout(() => void this.thread.terminate(), STOP_MS);
    await this.exited;
    clearTimeout(late);
  }

  private tick(): void {
    this.thread.postMessage({ type: 'tick', ...this.o.state() } satisfies HeartbeatTick);
  }
}
