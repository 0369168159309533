// Writes a file so that a reader sees the old version or the new one, never half of it: the data
// goes to a temporary file in the same directory, which is then renamed over the target.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}
