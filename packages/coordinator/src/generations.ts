// Forming a generation: every registered worker subscribes its collective under a new generation
// number, then all take one state (that of the member that applied the most steps, or a
// checkpoint's) so they agree again, and the coordinator checks their parameter hashes are equal.
// The same state broadcast restores the best weights to members that lack them.
import type { EventEmitter } from 'node:events';
import { splitChunks, STATE_GATHER_OPS, type JobSpec, type Logger, type Report } from '@tfjs-ddp/common';
import type { ControlPlane } from './control.js';
import { JobFailedError, ShardStateLostError } from './errors.js';
import type { Membership } from './membership.js';
import type { GenerationRecord } from './summary.js';

type Ready = Extract<Report, { type: 'ready' }>;

export interface GenerationsOptions {
  spec: JobSpec;
  control: ControlPlane;
  membership: Membership;
  log: Logger;
  /** Emits 'generation' ({ generation, worldSize, step }) once one formed. */
  events: EventEmitter;
  setStatus(patch: Record<string, unknown>): void;
}

/** Every rank's parameter hash equals rank 0's, or the job fails naming the ranks that drifted. */
export function checkReplicasEqual(reports: Map<number, { hash?: string }>, after: string): void {
  const ref = reports.get(0)?.hash;
  const drifted = [...reports.entries()].filter(([, r]) => r.hash !== ref).map(([rank]) => rank);
  if (drifted.length > 0) {
    throw new JobFailedError(
      `parameter drift after ${after}: rank${drifted.length > 1 ? 's' : ''} ${drifted.join(', ')} differ from rank 0 (hash ${ref}); replicas must stay bit-identical`,
    );
  }
}

export class Generations {
  /** Every generation formed: when, its members in rank order, whose state it took. */
  readonly records: GenerationRecord[] = [];

  constructor(private readonly o: GenerationsOptions) {}

  /**
   * Forms a new generation of the registered workers. Every member subscribes its collective, then
   * takes the state of the member that applied the most steps (or the checkpoint's state, when
   * `load` is given), so the survivors of an aborted step agree again. Returns the last step
   * applied in that state. A member lost meanwhile rejects with a StepFailedError.
   */
  async form(step: number, reason: string, load?: Uint8Array): Promise<number> {
    const { control, membership, spec } = this.o;
    const before = [...membership.members];
    const gen = membership.next();
    const members = membership.members;
    const joined = control.collect(
      'joining generation',
      (r): r is Extract<Report, { type: 'joined' }> => r.type === 'joined' && r.gen === gen,
      spec.timeouts.stepMs,
    );
    await control.broadcast({ type: 'generation', gen, members: [...members], step });
    const joins = await joined;
    let root = 0;
    for (const [rank, r] of joins) if (r.appliedStep > (joins.get(root)?.appliedStep ?? -1)) root = rank;
    const appliedStep = load ? step - 1 : (joins.get(root)?.appliedStep ?? -1);
    if (!load) this.checkShardsHeld(before, members, joins, appliedStep);
    const reports = load
      ? await this.untilReady('loading the checkpoint', async () => {
          const id = control.takeId();
          const chunks = splitChunks(load, control.maxPayload);
          for (let index = 0; index < chunks.length; index++) {
            await control.broadcast({ type: 'load', gen, id, index, total: chunks.length, data: chunks[index] });
          }
        })
      : await this.syncFrom(root, 'the state broadcast');
    this.records.push({
      generation: gen,
      step,
      members: [...members],
      root: load ? -1 : root,
      hashes: members.map((_, rank) => reports.get(rank)?.hash ?? ''),
      reason,
    });
    this.o.log.info('generation formed', {
      generation: gen,
      worldSize: members.length,
      members: members.join(','),
      stateFrom: load ? 'checkpoint' : `rank ${root}`,
      reason,
    });
    this.o.setStatus({ generation: gen, worldSize: members.length, members });
    this.o.events.emit('generation', { generation: gen, worldSize: members.length, step });
    return appliedStep;
  }

  /**
   * With optimizer.shard (and an optimizer with slots), every member of the generation before must
   * still be here with its state: it alone held its shard's slots. A member gone, or back without
   * its state (restarted), loses them: ShardStateLostError sends training back to a checkpoint.
   */
  private checkShardsHeld(
    before: readonly string[],
    members: readonly string[],
    joins: Map<number, Extract<Report, { type: 'joined' }>>,
    applied: number,
  ): void {
    const { spec } = this.o;
    if (!spec.optimizer.shard || spec.optimizer.type === 'sgd' || applied < 0) return;
    const stepOf = new Map([...joins.values()].map((j) => [j.workerId, j.appliedStep]));
    // A survivor of a step that failed after its update may be one step behind: it holds that update open.
    const lost = before.filter((id) => !members.includes(id) || (stepOf.get(id) ?? -1) < applied - 1);
    if (lost.length === 0) return;
    throw new ShardStateLostError(
      `the optimizer slots of the shards held by ${lost.join(', ')} were lost with ${lost.length > 1 ? 'them' : 'it'} ` +
        `(optimizer.shard keeps each shard's slots on one worker only)`,
    );
  }

  /** Registered workers that are not members yet (newcomers, restarted workers) join at a step boundary. */
  async admitWaiting(step: number): Promise<void> {
    const waiting = this.o.membership.waiting();
    if (waiting.length === 0) return;
    await this.form(step, `joined: ${waiting.join(', ')}`);
  }

  /** Root's whole state to every member (the `sync` command); resolves once all report it, alike. */
  syncFrom(root: number, what: string): Promise<Map<number, Ready>> {
    const { control, membership, spec } = this.o;
    // A sharded optimizer's state is gathered from the members before the root broadcasts it.
    const ops = 2 + (spec.optimizer.shard ? STATE_GATHER_OPS : 0);
    return this.untilReady(what, () =>
      control.broadcast({ type: 'sync', gen: membership.generation, op: control.takeOps(ops), root }),
    );
  }

  /** Runs `send` with every member's `ready` awaited (registered first) and checks their hashes agree. */
  private async untilReady(what: string, send: () => Promise<void>): Promise<Map<number, Ready>> {
    const gen = this.o.membership.generation;
    const ready = this.o.control.collect(
      what,
      (r): r is Ready => r.type === 'ready' && r.gen === gen,
      this.o.spec.timeouts.stepMs,
    );
    await send();
    const reports = await ready;
    checkReplicasEqual(reports, what);
    return reports;
  }
}
