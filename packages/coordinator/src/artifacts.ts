// Receives the files rank 0 ships over NATS in chunks (the saved model) and writes them
// atomically into the job's output directory, so pods need no shared volume.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class ArtifactReceiver {
  private readonly parts = new Map<string, { total: number; chunks: (Uint8Array | undefined)[]; received: number }>();

  /** Stores one chunk; returns true when the file it belongs to is complete. */
  add(name: string, index: number, total: number, data: Uint8Array): boolean {
    let p = this.parts.get(name);
    if (!p || p.total !== total) {
      p = { total, chunks: new Array(total).fill(undefined), received: 0 };
      this.parts.set(name, p);
    }
    if (index >= total || p.chunks[index]) return p.received === p.total;
    p.chunks[index] = data;
    p.received += 1;
    return p.received === p.total;
  }

  complete(names: readonly string[]): boolean {
    return names.every((n) => {
      const p = this.parts.get(n);
      return p !== undefined && p.received === p.total;
    });
  }

  missing(names: readonly string[]): string[] {
    return names.filter((n) => !this.complete([n]));
  }

  async writeAll(dir: string): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    const written: string[] = [];
    for (const [name, p] of this.parts) {
      const body = Buffer.concat(p.chunks.map((c) => c ?? new Uint8Array(0)));
      const tmp = join(dir, `.${name}.tmp-${process.pid}`);
      await writeFile(tmp, body);
      await rename(tmp, join(dir, name));
      written.push(name);
    }
    return written;
  }
}
