// earlyStopping.restoreBestWeights: every member keeps a snapshot of its weights when the monitored
// metric improves, and after an early stop all go back to it. The snapshot lives in the workers
// that took it; members that joined later take it from the lowest rank that holds one.
import type { JobSpec, Logger, Report } from '@tfjs-ddp/common';
import type { ControlPlane } from './control.js';
import type { Generations } from './generations.js';
import type { Membership } from './membership.js';
import type { Recovery } from './recovery.js';

type Done = Extract<Report, { type: 'done' }>;

export class BestWeights {
  constructor(
    private readonly o: {
      spec: JobSpec;
      control: ControlPlane;
      membership: Membership;
      generations: Generations;
      recovery: Recovery;
      log: Logger;
    },
  ) {}

  /** Every member keeps its current weights as the best so far. */
  async snapshot(step: number): Promise<void> {
    await this.o.recovery.run('snapshot', step, () => this.everyMember('snapshot'));
  }

  /**
   * Every member back to the best epoch's weights (`bestEpoch` counted from 0). Returns false when
   * no member holds them (all that took the snapshot are gone): the last weights stay.
   */
  restore(bestEpoch: number, step: number): Promise<boolean> {
    return this.o.recovery.run('restore', step, () => this.restoreOnce(bestEpoch));
  }

  private async restoreOnce(bestEpoch: number): Promise<boolean> {
    const { membership, log } = this.o;
    const reports = await this.everyMember('restore');
    const holders = [...reports].filter(([, r]) => r.restored !== false).map(([rank]) => rank);
    if (holders.length === membership.members.length) return true;
    if (holders.length === 0) {
      log.warn(
        `no worker holds the best weights (epoch ${bestEpoch + 1}): every worker that took the snapshot is gone; the model keeps the last weights`,
      );
      return false;
    }
    const root = Math.min(...holders);
    await this.o.generations.syncFrom(root, 'the broadcast of the best weights');
    log.info('best weights restored', {
      epoch: bestEpoch + 1,
      from: `rank ${root}`,
      to: membership.members
        .map((_, rank) => rank)
        .filter((rank) => !holders.includes(rank))
        .join(','),
    });
    return true;
  }

  private async everyMember(type: 'snapshot' | 'restore'): Promise<Map<number, Done>> {
    const { control, membership, spec } = this.o;
    const id = control.takeId();
    const done = control.collect(type, (r): r is Done => r.type === 'done' && r.id === id, spec.timeouts.stepMs);
    await control.broadcast({ type, gen: membership.generation, id });
    return done;
  }
}
