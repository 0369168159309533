// Writes a file so that a reader sees the old version or the new one, never half of it, and so that
// once the write resolves the new version survives a crash or power loss: the data goes to a
// temporary file of a unique name in the same directory (two writers never share one), is flushed
// to disk, renamed over the target, and the directory is flushed so that the rename is on disk too.
// A write that fails removes its temporary file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = uniqueSibling(path);
  try {
    await writeFileSynced(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    // The write's own error is the one to report; the temporary file may not even exist yet.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dir);
}

/** A name beside `path` that no other writer (process, or call in this one) picks: `.NAME.PID.RANDOM.tmp`. */
export function uniqueSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Creates `path` (it must not exist) with `data`, flushed to disk before this resolves. */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const file = await open(path, 'wx');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

// Where a directory cannot be opened or flushed (Windows; some network file systems), its entries are
// the file system's to persist: these codes say "not supported", not "failed".
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EBADF']);

/** Flushes a directory's entries (a file renamed into it) to disk. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch (err) {
    if (DIRECTORY_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    await handle.sync();
  } catch (err) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}
