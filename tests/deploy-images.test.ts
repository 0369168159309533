// The images of deploy/ built and run for real: deploy/Dockerfile on a Node base made here from
// Debian packages (the pinned public node image cannot be pulled here; NODE_IMAGE is its build
// argument), run as its non-root user with a read-only root filesystem; and deploy/Dockerfile.gpu
// as far as it can go without its CUDA base.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildDeployImage,
  containerRuntime,
  CPU_IMAGE,
  dockerAsync,
  ensureBaseImage,
  labelArgs,
  NODE_BASE,
} from './support/containers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(await readFile(join(ROOT, 'packages/cli/package.json'), 'utf8')) as { version: string })
  .version;
const BUILD_MS = 20 * 60_000;

const runtime = await containerRuntime();
if (!runtime.ok) process.stderr.write(`[deploy-images.test] skipped: ${runtime.reason}\n`);

/** `docker run` as uid 1000 with a read-only root: a write anywhere but a mounted volume fails. */
async function runReadOnly(image: string, args: string[], entrypoint?: string) {
  const run = ['run', '--rm', ...labelArgs(), '--read-only', '--user', '1000:1000', '--cap-drop', 'ALL'];
  if (entrypoint) run.push('--entrypoint', entrypoint);
  return dockerAsync([...run, image, ...args], 60_000);
}

describe.skipIf(!runtime.ok)('deploy/ images, built here', () => {
  let base: string;
  beforeAll(() => {
    base = ensureBaseImage(NODE_BASE);
  }, BUILD_MS);

  describe('deploy/Dockerfile (coordinator and CPU worker)', () => {
    let image: string;
    beforeAll(async () => {
      // TFJS_NODE=skip: tfjs-node's libtensorflow comes from storage.googleapis.com, which the
      // builder here cannot reach (the npm registry it can).
      image = await buildDeployImage(ROOT, 'deploy/Dockerfile', CPU_IMAGE, { NODE_IMAGE: base, TFJS_NODE: 'skip' });
    }, BUILD_MS);

    it('is set to run as the non-root uid 1000, tfjs-ddp its entrypoint', async () => {
      const r = await dockerAsync([
        'image',
        'inspect',
        '--format',
        '{{.Config.User}} {{json .Config.Entrypoint}}',
        image,
      ]);
      expect(r.stdout.trim()).toBe('1000:1000 ["tfjs-ddp"]');
    });

    it('prints its version as uid 1000 on a read-only root', async () => {
      const r = await runReadOnly(image, ['--version']);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(VERSION);
      expect(r.status).toBe(0);
    });

    it("prints a worker's help as uid 1000 on a read-only root", async () => {
      const r = await runReadOnly(image, ['worker', '--help']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^tfjs-ddp worker\n/);
      expect(r.stdout).toContain('--nats');
    });

    it('holds no node_modules of the build stage, only production dependencies', async () => {
      const r = await runReadOnly(image, ['-e', "require.resolve('typescript')"], 'node');
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("Cannot find module 'typescript'");
    });
  });

  // Only the build stage: the final stage starts FROM nvidia/cuda (cannot be pulled here, and a
  // stand-in would not be the CUDA runtime) and its `npm rebuild @tensorflow/tfjs-node-gpu` downloads
  // libtensorflow from storage.googleapis.com (not reachable here). The build stage is everything
  // of Dockerfile.gpu that does not need them: install from the lockfile and compile.
  it(
    'deploy/Dockerfile.gpu builds up to its CUDA stage, and what it compiled runs',
    async () => {
      const stage = await buildDeployImage(
        ROOT,
        'deploy/Dockerfile.gpu',
        'tfjs-ddp-test/tfjs-ddp-gpu:build-stage',
        { NODE_IMAGE: base },
        'build',
      );
      const r = await runReadOnly(stage, ['/src/packages/cli/dist/bin.js', '--version'], 'node');
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(VERSION);
    },
    BUILD_MS,
  );
});
