// Writes files that rank 0 shipped over NATS in chunks (the trained model, checkpoint states)
// atomically into a directory, so pods need no shared volume.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, type ChunkAssembler } from '@tfjs-ddp/common';

export async function writeAssembled(chunks: ChunkAssembler, names: readonly string[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const name of names) await writeFileAtomic(join(dir, name), chunks.take(name));
  return [...names];
}
