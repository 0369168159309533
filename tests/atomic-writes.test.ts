// Files the job writes (the model, summary, checkpoints, the completed marker) appear whole or not at
// all: a write that fails halfway leaves the previous version and no temporary file, concurrent
// writers of one path do not trip over each other, and a marker that is there but unreadable is an
// error naming it, not "absent".
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '@tfjs-ddp/common';
import { CheckpointStore, DirectoryStorage } from '@tfjs-ddp/coordinator';
import { silentLogger } from '@tfjs-ddp/common';
import { tempDir, type TempDir } from './support/jobs.js';

/**
 * Runs `code` (an ES module body) in a node process whose files may grow to `limitKiB` at most (the
 * shell's ulimit -f): a write past that fails with EFBIG midway, as on a full disk.
 */
function runWithFileSizeLimit(code: string, limitKiB: number): { status: number | null; output: string } {
  const r = spawnSync(
    'bash',
    ['-c', `ulimit -f ${limitKiB} && exec "${process.execPath}" --input-type=module -e "$SCRIPT"`],
    { env: { ...process.env, SCRIPT: code }, encoding: 'utf8' },
  );
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('atomic writes', () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await tempDir('atomic');
  });
  afterEach(() => dir.remove());

  it('replaces a file and leaves nothing else in its directory', async () => {
    const path = join(dir.path, 'summary.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two');
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await readdir(dir.path)).toEqual(['summary.json']);
  });

  it('lets concurrent writers of one path each finish: the file is one of theirs, whole', async () => {
    const path = join(dir.path, 'report.html');
    const versions = Array.from({ length: 8 }, (_, i) => `version ${i} `.repeat(10_000));
    await Promise.all(versions.map((v) => writeFileAtomic(path, v)));
    expect(versions).toContain(await readFile(path, 'utf8'));
    expect(await readdir(dir.path)).toEqual(['report.html']);
  });

  it('a write that fails halfway keeps the previous file and removes its temporary file', async () => {
    const path = join(dir.path, 'model.json');
    await writeFile(path, 'previous');
    const r = runWithFileSizeLimit(
      `import { writeFileAtomic } from '@tfjs-ddp/common';
       await writeFileAtomic(${JSON.stringify(path)}, new Uint8Array(64 * 1024)).then(
         () => console.log('written'), (err) => console.log('failed:', err.code));`,
      16,
    );
    expect(r.output).toContain('failed: EFBIG');
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(dir.path)).toEqual(['model.json']);
  });

  it('the completed marker is replaced whole: a write that fails halfway keeps the previous one', async () => {
    const storage = new DirectoryStorage(dir.path);
    await storage.putFile('completed.json', new TextEncoder().encode('{"step":10}\n'));
    const r = runWithFileSizeLimit(
      `import { DirectoryStorage } from '@tfjs-ddp/coordinator';
       await new DirectoryStorage(${JSON.stringify(dir.path)}).putFile('completed.json', new Uint8Array(64 * 1024)).then(
         () => console.log('written'), (err) => console.log('failed:', err.code));`,
      16,
    );
    expect(r.output).toContain('failed: EFBIG');
    expect(await readFile(join(dir.path, 'completed.json'), 'utf8')).toBe('{"step":10}\n');
    expect(await readdir(dir.path)).toEqual(['completed.json']);
  });

  it('a checkpoint that fails halfway leaves no directory behind, and the earlier ones stay', async () => {
    const storage = new DirectoryStorage(dir.path);
    await storage.write('ckpt-0000000001', [{ name: 'state.bin', data: Uint8Array.of(1) }]);
    const r = runWithFileSizeLimit(
      `import { DirectoryStorage } from '@tfjs-ddp/coordinator';
       await new DirectoryStorage(${JSON.stringify(dir.path)})
         .write('ckpt-0000000002', [{ name: 'state.bin', data: new Uint8Array(64 * 1024) }, { name: 'meta.json', data: new Uint8Array(1) }])
         .then(() => console.log('written'), (err) => console.log('failed:', err.code));`,
      16,
    );
    expect(r.output).toContain('failed: EFBIG');
    expect(await readdir(dir.path)).toEqual(['ckpt-0000000001']);
  });

  it('tells an absent completed marker from one that cannot be read, naming it', async () => {
    const storage = new DirectoryStorage(dir.path);
    const store = new CheckpointStore(storage, 2, silentLogger);
    expect(await storage.hasFile('completed.json')).toBe(false);
    expect(await store.clearIfCompleted()).toBe(false);
    // A directory where the marker should be: there, but no file to read (permissions do not stop root).
    await mkdir(join(dir.path, 'completed.json'));
    const unreadable = new RegExp(`cannot read ${join(dir.path, 'completed.json')}: EISDIR`);
    await expect(storage.hasFile('completed.json')).rejects.toThrow(unreadable);
    await expect(store.clearIfCompleted()).rejects.toThrow(unreadable);
  });
});
