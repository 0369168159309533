// The single-folder build of scripts/bundle.mjs (what scripts/gpu/pack.sh carries to a GPU machine
// with Node alone), run from a folder with no node_modules above it: the CLI trains a job on a
// local cluster, the webgpu loader reaches Dawn inside the bundle, and the all-reduce benchmark
// runs. Needs the built packages (npx tsc -b), like every test that spawns processes.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// scripts/bundle.mjs carries the webgpu package only where its linux-x64 Dawn is installed.
const dawnInstalled = existsSync(join(repo, 'node_modules/webgpu/dist/linux-x64/dawn.node'));

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function node(args: string[], cwd: string, timeout = 120_000): Promise<Result> {
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd, timeout, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let bundle: string;
let job: string;

beforeAll(async () => {
  // A folder under the system temp dir: no node_modules of this repository is on its resolution path.
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-bundle-'));
  bundle = join(dir, 'bundle');
  const built = await node([join(repo, 'scripts/bundle.mjs'), '--out', bundle], repo);
  if (built.code !== 0) throw new Error(`scripts/bundle.mjs failed:\n${built.stderr}`);
  job = join(dir, 'linear.yaml');
  copyFileSync(join(repo, 'examples/jobs/linear.yaml'), job);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the bundle', () => {
  it('holds the entries, the wasm binaries and, where installed, Dawn', () => {
    for (const f of [
      'tfjs-ddp.mjs',
      'tfjs-ddp-worker.mjs',
      'heartbeat-thread.mjs',
      'bench-allreduce.mjs',
      'bench-scaling.mjs',
      'rank.mjs',
    ]) {
      expect(existsSync(join(bundle, f)), f).toBe(true);
    }
    expect(existsSync(join(bundle, 'tfjs-backend-wasm-simd.wasm'))).toBe(true);
    if (dawnInstalled) {
      expect(existsSync(join(bundle, 'node_modules/webgpu/dist/linux-x64/dawn.node'))).toBe(true);
    }
  });

  it('trains a job on a local cluster of 2 wasm workers with nothing but Node', async () => {
    const version = await node([join(bundle, 'tfjs-ddp.mjs'), '--version'], dir);
    const pkg = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);

    const run = await node(
      [join(bundle, 'tfjs-ddp.mjs'), 'local', '--workers', '2', '--job', job, '--backend', 'wasm'].concat([
        '--output',
        join(dir, 'run'),
      ]),
      dir,
    );
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, 'run', 'summary.json'), 'utf8')) as {
      backends: Record<string, string>;
      worldSize?: number;
      test?: { loss: number };
    };
    expect(Object.values(summary.backends)).toEqual(['wasm', 'wasm']);
    // w = [2, -3.4], b = 4.2 with noise 0.01: a trained model's test MSE is near 1e-4.
    expect(summary.test?.loss).toBeLessThan(0.01);
    expect(existsSync(join(dir, 'run', 'model', 'model.json'))).toBe(true);
  }, 120_000);

  it.skipIf(!dawnInstalled)(
    'loads Dawn for the webgpu backend from inside the bundle',
    async () => {
      const run = await node(
        [join(bundle, 'tfjs-ddp.mjs'), 'local', '--workers', '1', '--job', job, '--backend', 'webgpu'].concat([
          '--output',
          join(dir, 'run-webgpu'),
        ]),
        dir,
      );
      const out = run.stdout + run.stderr;
      // Without a GPU, Dawn loads and finds no adapter; with one, the job trains. Either way the
      // package was found and loaded: not "not installed", not "failed to load".
      if (run.code !== 0) expect(out).toMatch(/Dawn found no WebGPU adapter/);
      expect(out).not.toMatch(/webgpu is not installed|webgpu failed to load/);
    },
    120_000,
  );

  it('runs the all-reduce benchmark, its ranks as bundled processes', async () => {
    const run = await node(
      [join(bundle, 'bench-allreduce.mjs'), '--world', '2', '--sizes', '1', '--dtypes', 'f32'].concat([
        '--iters',
        '3',
        '--raw-mib',
        '8',
        '--json',
      ]),
      dir,
    );
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(run.stdout) as { cases: { world: number; dtype: string; timeMs: { median: number } }[] };
    expect(report.cases).toHaveLength(1);
    expect(report.cases[0]).toMatchObject({ world: 2, dtype: 'f32' });
    expect(report.cases[0].timeMs.median).toBeGreaterThan(0);
  }, 120_000);
});
