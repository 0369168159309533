// Sends the collective's chunks, each through the server that carries its shard's subjects
// (data-plane.ts), with the chunk header as NATS headers and the body as is (no copy). An
// operation's publishes are paced per connection (flow-control.ts).
import { encodeChunkHeader, type ChunkHeader, type MessageObserver, type WireDtype } from '../protocol/index.js';
import type { DataPlane } from './data-plane.js';
import { createServerFlowControls } from './flow-control.js';

export type ChunkFields = Omit<ChunkHeader, 'v' | 'dtype'>;

/** The publishes of one operation. */
export interface PacedSender {
  /** Publishes, then waits while the window of the shard's connection is full. */
  send(subject: string, h: ChunkFields, dtype: WireDtype, body: Uint8Array): Promise<void>;
  /** Resolves once the server of `shard` has received everything published through it. */
  drain(shard: number): Promise<void>;
}

export class ChunkPublisher {
  constructor(
    private readonly plane: DataPlane,
    private readonly flushBytes: number,
    private readonly observer: MessageObserver,
  ) {}

  /** Publishes at once, unpaced (an owner's reduced chunk, sent from a message callback); throws on a closed connection. */
  send(subject: string, h: ChunkFields, dtype: WireDtype, body: Uint8Array): void {
    this.plane.serverOf(h.shard).nc.publish(subject, body, { headers: encodeChunkHeader({ ...h, dtype }) });
    this.observer.bytesOut?.(body.length);
  }

  /** `op.done` ends any wait for a window; `op.error`, once set, makes the next send throw it. */
  paced(op: { readonly done: Promise<void>; readonly error?: Error }): PacedSender {
    const flowOf = createServerFlowControls(this.flushBytes, op);
    const flow = (shard: number) => flowOf(this.plane.serverOf(shard).nc);
    return {
      send: async (subject, h, dtype, body) => {
        this.send(subject, h, dtype, body);
        await flow(h.shard).published(body.length);
      },
      drain: (shard) => flow(shard).drain(),
    };
  }
}
