// The built tfjs-ddp executable, spawned as users run it (build first: npx tsc -b): that it runs at
// all, exits 0 or not, and writes to the right stream. What its commands do is tests/cli.test.ts's.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(repo, 'packages/cli/dist/bin.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function tfjsDdp(args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(process.execPath, [bin, ...args], { cwd: repo }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing; build it first with: npx tsc -b`);
});

describe('the tfjs-ddp bin', () => {
  it('is a node script', () => {
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('prints its package version', async () => {
    const { version } = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8'));
    expect(await tfjsDdp(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('exits non-zero on an unknown command', async () => {
    const { code, stderr } = await tfjsDdp(['frobnicate']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Unknown command: frobnicate/);
  });
});
