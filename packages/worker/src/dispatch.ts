// The coordinator's commands, one at a time in arrival order: each goes to the part that owns it
// (membership, the training step, the replica, evaluation, rank 0's files) and is answered with a
// report; a command that fails is answered with a `failed` report naming the error. Commands of
// another generation are ignored, as stale or forged; an abort, a new coordinator and the stop act
// at once, not queued behind a step blocked in the all-reduce.
import type { Msg } from '@nats-io/transport-node';
import {
  commandSchema,
  decodeMessage,
  encodeMessage,
  maxPayload,
  reportSchema,
  type Command,
  type JobSpec,
  type JobSubjects,
  type Logger,
  type MessageObserver,
  type NatsConnection,
  type Report,
  type WorkerMetrics,
} from '@tfjs-ddp/common';
import { COMMAND_QUEUE_LIMITS, CommandQueue } from './command-queue.js';
import { evaluateSplit, type EvaluationParts } from './evaluation.js';
import type { WorkerMembership } from './membership.js';
import type { Rank0Files } from './rank0-files.js';
import type { Replica } from './replica.js';
import type { TrainingStep } from './training-step.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface DispatcherOptions {
  nc: NatsConnection;
  spec: JobSpec;
  subjects: JobSubjects;
  workerId: string;
  log: Logger;
  observer: MessageObserver;
  metrics: WorkerMetrics;
  membership: WorkerMembership;
  replica: Replica;
  training: TrainingStep;
  files: Rank0Files;
  evaluation: EvaluationParts;
  /** Aborted by the coordinator's stop: a registration still retrying gives up, the stop is next. */
  stopped: AbortController;
}

export class Dispatcher {
  private readonly queue: CommandQueue;
  /** The generation whose step an overflow of the command queue failed (once is enough). */
  private overflowedGen = -1;
  /**
   * Steps the coordinator sent ahead that cannot succeed any more, skipped rather than computed only
   * to fail in the all-reduce: those it aborted (operations below `before`), and every later one of a
   * generation in which a step failed here (it would start from parameters the others may have updated).
   */
  private aborted = { gen: -1, before: 0 };
  /**
   * The registrations completed when a hello saying this worker was dropped arrived; -1: none came.
   * Acted on only if no registration completed since: an older hello predates the registration.
   */
  private droppedNotice = -1;

  constructor(private readonly o: DispatcherOptions) {
    this.queue = new CommandQueue(COMMAND_QUEUE_LIMITS, () => o.membership.gen);
  }

  receive(m: Msg): void {
    const { nc, spec, membership, training } = this.o;
    const r = decodeMessage(commandSchema, m.data, { maxBytes: maxPayload(nc), job: spec.name });
    if (!r.ok) {
      this.o.observer.invalid(r.reason, r.detail, m.subject);
      return;
    }
    const cmd = r.value;
    // A step blocked in the all-reduce must be released now (queued behind it, the abort would wait
    // forever), and a step still computing must not enter the aborted all-reduce later.
    if (cmd.type === 'abort' && cmd.gen === membership.gen) {
      membership.abort(cmd.reason, { before: cmd.before });
      training.abort(cmd.reason, cmd.before);
      this.skipSteps(cmd.gen, cmd.before ?? Number.MAX_SAFE_INTEGER);
    }
    if (cmd.type === 'hello' && membership.isNewCoordinator(cmd.instance))
      membership.abort('a new coordinator started');
    if (cmd.type === 'hello' && membership.droppedIn(cmd)) this.droppedNotice = membership.registrations;
    if (cmd.type === 'stop') this.o.stopped.abort(new Error(`the coordinator stopped the job: ${cmd.reason}`));
    const overflow = this.queue.push(cmd, m.data.length);
    if (overflow) this.commandOverflow(overflow);
  }

  /**
   * More commands came than the bounded queue holds, which the coordinator never sends: a command of
   * this generation was lost. This rank's step fails (every operation of its collective does, and the
   * coordinator hears of it), so the coordinator's recovery forms a new generation and starts over.
   */
  private commandOverflow(detail: string): void {
    const { membership, observer, subjects, log, training } = this.o;
    observer.invalid('backlog', detail, subjects.control);
    if (this.overflowedGen === membership.gen) return;
    this.overflowedGen = membership.gen;
    const error = `protocol violation: ${detail}`;
    log.error('command queue overflow; failing this generation', { generation: membership.gen, error });
    membership.abort(error, { before: Number.MAX_SAFE_INTEGER });
    training.abort(error, Number.MAX_SAFE_INTEGER);
    this.skipSteps(membership.gen, Number.MAX_SAFE_INTEGER);
    if (membership.rank >= 0)
      this.report({ type: 'failed', gen: membership.gen, rank: membership.rank, step: 0, error });
  }

  /** Messages of the step in flight may have been lost while NATS was away: abort it; the coordinator redoes it. */
  async watchConnection(): Promise<void> {
    for await (const s of this.o.nc.status()) {
      if (s.type === 'reconnect') this.o.membership.abort('the NATS connection was re-established mid-step');
    }
  }

  /** Handles commands until the coordinator's stop; resolves with its reason. */
  async run(): Promise<{ reason: string; failed: boolean }> {
    const { membership, log } = this.o;
    for await (const cmd of this.queue) {
      if (cmd.type === 'stop') {
        log.info('stopping', { reason: cmd.reason, failed: cmd.failed });
        return { reason: cmd.reason, failed: cmd.failed };
      }
      if (cmd.type === 'hello') {
        if (membership.isNewCoordinator(cmd.instance)) await membership.rejoin();
        else if (this.droppedNotice === membership.registrations) {
          // Dropped while it could not answer (frozen, stuck), and too few remain for a generation
          // without it to form, which would have said so: register again now.
          this.droppedNotice = -1;
          const refused = await membership.registerAgain(membership.gen);
          if (refused) return { reason: refused, failed: false };
        }
        continue;
      }
      if (cmd.type === 'abort') continue;
      // Left out of a generation formed after it was accepted: the coordinator dropped this worker
      // (frozen, cut off). It registers again and joins at the next step boundary. Only a generation
      // command says so: any other command of an unknown generation is ignored, as forged or stale.
      if (cmd.type === 'generation' && membership.droppedBy(cmd.gen, cmd.members)) {
        const refused = await membership.registerAgain(cmd.gen);
        if (refused) return { reason: refused, failed: false };
        continue;
      }
      if (cmd.type !== 'generation' && cmd.gen !== membership.gen) continue;
      if (cmd.type !== 'generation' && membership.rank < 0) continue;
      if (cmd.type === 'step' && cmd.gen === this.aborted.gen && cmd.op < this.aborted.before) continue;
      if (cmd.type !== 'step') this.o.training.interrupted();
      try {
        await this.handle(cmd);
      } catch (err) {
        const e = err as Error;
        if (cmd.type === 'step') {
          this.o.metrics.stepAborted();
          this.skipSteps(membership.gen, Number.MAX_SAFE_INTEGER);
        }
        log.error(`${cmd.type} failed`, { error: e.message });
        this.report({
          type: 'failed',
          gen: membership.gen,
          rank: Math.max(0, membership.rank),
          step: cmd.type === 'step' ? cmd.step : 0,
          error: e.message,
        });
      }
    }
    return { reason: 'the command stream ended', failed: true };
  }

  close(): void {
    this.queue.close();
  }

  /** Steps of generation `gen` with operations below `before` are skipped (the widest bound given wins). */
  private skipSteps(gen: number, before: number): void {
    this.aborted = { gen, before: gen === this.aborted.gen ? Math.max(before, this.aborted.before) : before };
  }

  private async handle(cmd: Exclude<Command, { type: 'stop' | 'hello' | 'abort' }>): Promise<void> {
    const { membership, replica, log } = this.o;
    const { gen, rank } = membership;
    switch (cmd.type) {
      case 'generation':
        if (await membership.join(cmd.gen, cmd.members))
          this.report({ type: 'joined', gen: cmd.gen, rank: membership.rank, appliedStep: replica.appliedStep });
        return;
      case 'sync': {
        const hash = await replica.sync(membership.requireCollective(), cmd.op, cmd.root);
        return this.report({ type: 'ready', gen, rank, hash });
      }
      case 'load': {
        const hash = await replica.load(cmd, rank);
        if (hash !== undefined) this.report({ type: 'ready', gen, rank, hash });
        return;
      }
      case 'step': {
        const done = await this.o.training.run(cmd, membership.requireCollective());
        return this.report({ type: 'stepDone', gen, rank, ...done });
      }
      case 'eval': {
        const sums = await evaluateSplit(this.o.evaluation, cmd.split, cmd.slices[rank]);
        return this.report({ type: 'evalDone', gen, id: cmd.id, ...sums });
      }
      case 'snapshot':
        await replica.snapshot();
        return this.report({ type: 'done', gen, id: cmd.id });
      case 'restore': {
        // A worker that joined after the snapshot has none; the coordinator then has a rank that
        // does broadcast its state.
        const restored = replica.restore();
        if (!restored) log.info('no snapshot of the best weights here (joined after it was taken)');
        return this.report({ type: 'done', gen, id: cmd.id, restored });
      }
      case 'checkpoint': {
        // Sharded: every member takes part in assembling the state; rank 0 alone keeps and sends it.
        const gathered =
          cmd.op !== undefined ? await replica.gatherState(membership.requireCollective(), cmd.op) : undefined;
        if (rank === 0) this.report(await this.o.files.checkpoint(cmd.id, cmd.gen, gathered));
        return;
      }
      case 'save':
        if (rank === 0) this.report(await this.o.files.save(cmd.id, cmd.gen, cmd.predictSamples));
        return;
    }
  }

  private report(r: DistributiveOmit<Report, 'job' | 'workerId'>): void {
    const { nc, subjects, spec, workerId } = this.o;
    nc.publish(subjects.report, encodeMessage(reportSchema, { ...r, job: spec.name, workerId } as Report));
  }
}
