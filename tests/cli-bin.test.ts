// The built tfjs-ddp executable, spawned as users run it (build first: npx tsc -b).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

function tfjsDdp(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repo, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(() => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing; build it first with: npx tsc -b`);
});

describe('the tfjs-ddp bin', () => {
  it('is a node script', () => {
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('lists its subcommands in --help', async () => {
    const { code, stdout } = await tfjsDdp(['--help']);
    expect(code).toBe(0);
    for (const command of ['local', 'coordinator', 'worker', 'validate', 'evaluate', 'predict', 'data']) {
      expect(stdout).toMatch(new RegExp(`^  tfjs-ddp ${command}\\b`, 'm'));
    }
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

  it('validates an example job named by an environment variable', async () => {
    const { code, stdout, stderr } = await tfjsDdp(['validate'], { TFJS_DDP_JOB: 'examples/jobs/fashion-mlp.yaml' });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^name: fashion-mlp$/m);
    expect(stderr).toMatch(/^examples\/jobs\/fashion-mlp\.yaml: valid \(specHash [0-9a-f]{64}\)$/m);
  });

  it('exits 1 and names the field on a broken spec', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-bin-'));
    try {
      const path = join(dir, 'broken.yaml');
      await writeFile(
        path,
        readFileSync(join(repo, 'examples/jobs/perceptron.yaml'), 'utf8').replace('zoo: perceptron', 'zoo: perceptorn'),
      );
      const { code, stderr } = await tfjsDdp(['validate', '--job', path]);
      expect(code).toBe(1);
      expect(stderr).toContain(
        `${path}: model.zoo: got "perceptorn", expected one of linear, perceptron, binary-mlp, mlp, cnn, transformer-lm; did you mean "perceptron"?`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
