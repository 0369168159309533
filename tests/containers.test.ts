// The container runtime the tests use (tests/support/containers.ts): base images built once and
// found again by their recipe's hash, every test container labelled and found by the teardown
// check when left behind, and the NATS fixture in a real container that is gone after stop().
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connectNats } from '@tfjs-ddp/common';
import {
  baseImageTag,
  containerRuntime,
  ensureBaseImage,
  findContainerRuntime,
  labelArgs,
  leftovers,
  removeLeftovers,
  NATS_BASE,
  RUN_LABEL,
  TEST_LABEL,
} from './support/containers.js';
import { startNats } from './support/nats.js';

const runtime = await containerRuntime();
if (!runtime.ok) process.stderr.write(`[containers.test] skipped: ${runtime.reason}\n`);

const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 60_000 });

describe('container runtime for the tests', () => {
  it('is switched off by TFJS_DDP_TEST_CONTAINERS=off, saying so', async () => {
    const prev = process.env.TFJS_DDP_TEST_CONTAINERS;
    process.env.TFJS_DDP_TEST_CONTAINERS = 'off';
    try {
      expect(await findContainerRuntime()).toEqual({
        ok: false,
        reason: expect.stringContaining('TFJS_DDP_TEST_CONTAINERS=off'),
      });
    } finally {
      if (prev === undefined) delete process.env.TFJS_DDP_TEST_CONTAINERS;
      else process.env.TFJS_DDP_TEST_CONTAINERS = prev;
    }
  });

  it("tags a base image with its recipe's hash, so a changed recipe is a new image", () => {
    const tag = baseImageTag(NATS_BASE);
    expect(tag).toMatch(/^tfjs-ddp-test\/nats:[0-9a-f]{12}$/);
    expect(baseImageTag({ ...NATS_BASE })).toBe(tag);
    expect(baseImageTag({ ...NATS_BASE, suite: 'trixie' })).not.toBe(tag);
    expect(baseImageTag({ ...NATS_BASE, packages: [...NATS_BASE.packages, 'curl'] })).not.toBe(tag);
  });
});

describe.skipIf(!runtime.ok)('with a container runtime', () => {
  it('builds a base image once: asked again, it is the same image, not rebuilt', () => {
    const tag = ensureBaseImage(NATS_BASE);
    const id = () => docker('image', 'inspect', '--format', '{{.Id}} {{.Created}}', tag).stdout.trim();
    const before = id();
    expect(before).not.toBe('');
    expect(ensureBaseImage(NATS_BASE)).toBe(tag);
    expect(id()).toBe(before);
  });

  it("finds a labelled container a run left behind, and removes it, with the run's own label only", () => {
    const runId = `leftover-check-${process.pid}`;
    const tag = ensureBaseImage(NATS_BASE);
    const labels = labelArgs().map((a) => (a.startsWith(`${RUN_LABEL}=`) ? `${RUN_LABEL}=${runId}` : a));
    const created = docker('create', ...labels, tag, '--version');
    expect(created.status, created.stderr).toBe(0);
    const id = created.stdout.trim();
    try {
      const left = leftovers(runId);
      expect(left).toEqual([expect.stringMatching(new RegExp(`^container ${id.slice(0, 12)}`))]);
      expect(leftovers(`${runId}-other`)).toEqual([]);
      removeLeftovers(left);
      expect(leftovers(runId)).toEqual([]);
    } finally {
      docker('rm', '-f', id);
    }
  });

  it('runs the NATS fixture in a labelled container that stop() removes', async () => {
    const nats = await startNats();
    let id: string | undefined;
    try {
      expect(nats.kind).toBe('testcontainers');
      const port = new URL(nats.url.replace('nats://', 'http://')).port;
      const found = docker('ps', '--filter', `label=${TEST_LABEL}=1`, '--format', '{{.ID}} {{.Ports}}');
      const line = found.stdout.split('\n').find((l) => l.includes(`:${port}->4222`));
      expect(line, `no labelled container publishes ${nats.url}: ${found.stdout}`).toBeDefined();
      id = line!.split(' ')[0];
      const nc = await connectNats({ servers: [nats.url] });
      await nc.close();
    } finally {
      await nats.stop();
    }
    expect(docker('ps', '-a', '-q', '--filter', `id=${id ?? 'none'}`).stdout.trim()).toBe('');
  });
});
