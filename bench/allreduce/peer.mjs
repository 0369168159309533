// Child processes of the benchmarks (ranks, raw publisher and subscriber, Python ranks): every one
// is killed when the benchmark exits, fails or is interrupted, and its output goes to stderr with its
// name in front. Node children are driven by IPC messages (Peer).
import { fork } from 'node:child_process';

const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Kills every child still running; safe to call more than once. */
export function killAllPeers() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Kills `child` with the benchmark and writes each line of `streams` to stderr as `[name] line`,
 * so that stdout carries only the report.
 * @param {import('node:child_process').ChildProcess} child
 * @param {string} name  e.g. "rank 2/4"
 * @param {import('node:stream').Readable[]} [streams]  default: the child's stdout and stderr
 */
export function track(child, name, streams = [child.stdout, child.stderr]) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  for (const stream of streams) {
    let pending = '';
    stream.on('data', (b) => {
      const lines = (pending + b.toString()).split('\n');
      pending = lines.pop();
      for (const line of lines) process.stderr.write(`[${name}] ${line}\n`);
    });
  }
}

/**
 * A forked Node process answering `{ type, ... }` messages. Messages are queued until someone
 * waits for them, so a reply that arrives early is never lost; an `error` message or the
 * process exiting fails the wait with the peer's own explanation.
 */
export class Peer {
  /**
   * @param {string} name  shown in progress lines and errors, e.g. "rank 2/4"
   * @param {URL} module  the script to run
   * @param {string[]} args
   */
  constructor(name, module, args) {
    this.name = name;
    this.queue = [];
    this.waiter = undefined;
    this.failure = undefined;
    this.child = fork(module, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    track(this.child, name);
    this.child.on('message', (msg) => {
      if (msg.type === 'error') this.fail(new Error(`${name} failed: ${msg.message}`));
      else this.queue.push(msg);
      this.wake();
    });
    this.child.on('exit', (code, signal) => {
      this.fail(new Error(`${name} exited unexpectedly (code ${code}, signal ${signal}); see its output above`));
      this.wake();
    });
  }

  send(msg) {
    if (this.failure) throw this.failure;
    this.child.send(msg);
  }

  /** Resolves with the next message of `type`; rejects after `timeoutMs` naming what was awaited. */
  next(type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${this.name} sent no "${type}" message within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiter = () => {
        const i = this.queue.findIndex((m) => m.type === type);
        if (i >= 0) {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(this.queue.splice(i, 1)[0]);
        } else if (this.failure) {
          clearTimeout(timer);
          this.waiter = undefined;
          reject(this.failure);
        }
      };
      this.waiter();
    });
  }

  /** Asks the peer to exit, then kills it if it has not within `graceMs`. */
  async stop(graceMs = 5_000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.failure ??= new Error(`${this.name} was stopped`);
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.connected) this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  fail(err) {
    this.failure ??= err;
  }

  wake() {
    this.waiter?.();
  }
}
