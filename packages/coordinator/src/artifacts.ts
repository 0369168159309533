// Writes files that rank 0 shipped over NATS in chunks (the trained model, checkpoint states)
// atomically into a directory, so pods need no shared volume.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkAssembler } from '@tfjs-ddp/common';

export async function writeAssembled(chunks: ChunkAssembler, names: readonly string[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const name of names) {
    const tmp = join(dir, `.${name}.tmp-${process.pid}`);
    await writeFile(tmp, chunks.take(name));
    await rename(tmp, join(dir, name));
  }
  return [...names];
}
