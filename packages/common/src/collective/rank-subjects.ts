// The data-plane subjects one rank publishes and subscribes to in its generation, and who sent a
// chunk that arrived on the owner's one wildcard subscription. Each subject names its sender: the
// member's worker id when the collective knows the membership, else the rank (protocol/subjects.ts).
import { jobSubjects, senderToken, SENDER_TOKEN_INDEX } from '../protocol/index.js';
import type { NatsCollectiveSettings } from './options.js';

export class RankSubjects {
  /** Where this rank publishes its contribution to shard s. */
  readonly rs: string[];
  /** Where rank s publishes its reduced shard (ag) and its broadcasts (bc). */
  readonly ag: string[];
  readonly bc: string[];
  /** This rank's subscription to every contribution to its shard. */
  readonly rsInbound: string;
  /** `ddp.<job>.g<gen>.`: the start of every data-plane subject of the generation. */
  readonly prefix: string;
  private readonly senderRanks = new Map<string, number>();

  constructor(settings: Pick<NatsCollectiveSettings, 'job' | 'generation' | 'rank' | 'worldSize' | 'members'>) {
    const subjects = jobSubjects(settings.job).data(settings.generation);
    const ranks = [...Array(settings.worldSize).keys()];
    const sender = (r: number) => settings.members?.[r] ?? r;
    for (const r of ranks) this.senderRanks.set(senderToken(sender(r)), r);
    this.rs = ranks.map((s) => subjects.rs(s, sender(settings.rank)));
    this.ag = ranks.map((s) => subjects.ag(s, sender(s)));
    this.bc = ranks.map((s) => subjects.bc(s, sender(s)));
    this.rsInbound = subjects.rsFromAny(settings.rank);
    this.prefix = `${subjects.prefix}.`;
  }

  /** The rank of the member `subject` names as its sender; -1: no member of this generation. */
  senderRankOf(subject: string): number {
    return this.senderRanks.get(subject.split('.')[SENDER_TOKEN_INDEX]) ?? -1;
  }
}
