// `tfjs-ddp local` fails fast, non-zero, with a message that names the problem, for each mistake a
// user can make in the job or on the command line.
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerBinPath } from 'tfjs-ddp';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, type TempDir } from './support/jobs.js';

const run = promisify(execFile);
const CLI = 'packages/cli/dist/bin.js';

// Below the 60 s test timeout, so a command that hangs fails the test with its output.
const EXIT_WITHIN_MS = 45_000;

async function local(args: string[], bin: string[] = [CLI, 'local']): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [...bin, ...args], { timeout: EXIT_WITHIN_MS });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string; killed?: boolean };
    if (e.killed) {
      throw new Error(
        `expected ${bin.join(' ')} to fail fast, it ran past ${EXIT_WITHIN_MS} ms; stderr:\n${e.stderr}`,
        {
          cause: err,
        },
      );
    }
    return { code: e.code, stderr: e.stderr };
  }
}

const base = [
  'name: broken',
  'data: { train: { type: synthetic-binary, n: 100, seed: 1 } }',
  'optimizer: { type: sgd, learningRate: 0.1 }',
  'loss: binaryCrossentropy',
  'batchSize: 10',
  'epochs: 1',
];

describe('tfjs-ddp local with a mistake', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('cli-errors');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  async function job(name: string, lines: string[]): Promise<string> {
    const file = join(dir.path, `${name}.yaml`);
    await writeFile(file, lines.join('\n'));
    return file;
  }

  it('an invalid job spec names the field', async () => {
    const file = await job('invalid', [...base, 'model: { zoo: perceptron }', 'optimizer2: 1']);
    const r = await local(['--workers', '1', '--job', file, '--nats', nats.url]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/optimizer2/);
  });

  it('a missing data file names the file', async () => {
    const file = await job('missing-data', [
      'name: broken',
      'model: { zoo: mlp }',
      'data: { train: { type: idx, images: /nonexistent/train-images.gz, labels: /nonexistent/train-labels.gz } }',
      'optimizer: { type: sgd, learningRate: 0.1 }',
      'loss: sparseCategoricalCrossentropy',
      'batchSize: 10',
      'epochs: 1',
    ]);
    const r = await local(['--workers', '1', '--job', file, '--nats', nats.url]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the job failed: .*\/nonexistent\/train-images\.gz/);
  });

  it('a model module that throws names the module and its error', async () => {
    const module = resolve('tests/fixtures/models/throws-in-create.mjs');
    const file = await job('throwing-module', [...base, `model: { module: ${module} }`]);
    const r = await local(['--workers', '1', '--job', file, '--nats', nats.url]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the job failed: .*throws-in-create\.mjs.*params\.units must be set/);
  });

  it('an unknown backend lists the valid ones', async () => {
    const file = await job('backend', [...base, 'model: { zoo: perceptron }']);
    const r = await local(['--workers', '1', '--job', file, '--nats', nats.url, '--backend', 'tpu']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/tpu/);
    expect(r.stderr).toMatch(/auto.*tensorflow.*webgpu.*wasm.*cpu/s);
  });

  it('an address that accepts TCP but never speaks NATS: worker, coordinator and local say so and exit non-zero', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    try {
      const file = await job('silent', [...base, 'model: { zoo: perceptron }']);
      const args = ['--job', file, '--nats', `nats://127.0.0.1:${port}`];
      const results = await Promise.all([
        local(args, [workerBinPath()]),
        local(args, [CLI, 'coordinator']),
        local(['--workers', '1', ...args]),
      ]);
      for (const r of results) {
        expect(r.code, r.stderr).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(`no NATS server answered at nats://127\\.0\\.0\\.1:${port}`));
      }
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
