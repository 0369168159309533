// The container images and the compose stack (deploy/): no Docker daemon is needed to check that
// the Dockerfiles pin their bases, install from the lockfile, run as a non-root user and only copy
// what the build context holds, nor that the compose stack's pieces point at each other (scrape
// targets, ports, mounts, the job it runs) and that its NATS and Prometheus configs load.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEPLOYMENT_ROLE_USERS, authorizationBlock, parseJobSpec } from '@tfjs-ddp/common';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const hasCommand = (cmd: string) => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;

// --- Dockerfiles ----------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name?: string;
  body: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped; FROM lines with ARG defaults substituted. */
function parseDockerfile(text: string): Stage[] {
  const lines = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const instruction = { op: op.toUpperCase(), args: rest.replace(/\s+/g, ' ') };
    if (instruction.op === 'ARG' && stages.length === 0) {
      const [name, value = ''] = instruction.args.split('=');
      args.set(name, value);
    } else if (instruction.op === 'FROM') {
      const [base, , name] = instruction.args
        .replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '')
        .split(' ');
      stages.push({ base, name, body: [] });
    } else {
      stages.at(-1)?.body.push(instruction);
    }
  }
  return stages;
}

/** A base is pinned when it names a digest, or at least an exact x.y.z version tag. */
function pinned(ref: string): boolean {
  const m = /^[a-z0-9._/-]+:([\w.-]+)(@sha256:[0-9a-f]{64})?$/.exec(ref);
  if (!m) return false;
  return Boolean(m[2]) || /^v?\d+\.\d+\.\d+/.test(m[1]);
}

/** Whether `path` (relative to the repository root) is sent to the Docker daemon as build context. */
function inBuildContext(path: string): boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const glob = l.replace(/^!/, '').replace(/\/$/, '');
      const source = glob
        .split('')
        .map((ch, i, all) => {
          if (ch === '*') return all[i + 1] === '*' ? '' : all[i - 1] === '*' ? '.*' : '[^/]*';
          if (ch === '?') return '[^/]';
          return ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, re: new RegExp(`^${source}$`) };
    });
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const rule of rules) if (prefixes.some((p) => rule.re.test(p))) excluded = !rule.negate;
  return !excluded;
}

function filesUnder(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

const DOCKERFILES = ['deploy/Dockerfile', 'deploy/Dockerfile.gpu'] as const;

describe('Dockerfiles', () => {
  it('the pin check accepts digests and exact versions, and rejects floating tags', () => {
    expect(pinned('node:20.20.2-bookworm-slim@sha256:' + 'a'.repeat(64))).toBe(true);
    expect(pinned('nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04')).toBe(true);
    expect(pinned('node:20-bookworm-slim')).toBe(false);
    expect(pinned('node:latest')).toBe(false);
    expect(pinned('node')).toBe(false);
  });

  describe.each(DOCKERFILES)('%s', (file) => {
    const stages = parseDockerfile(read(file));
    const final = stages.at(-1)!;
    const runs = stages.flatMap((s) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args));

    it('pins every base image, the Node image by tag and digest', () => {
      const stageNames = new Set(stages.map((s) => s.name));
      const external = stages.map((s) => s.base).filter((b) => !stageNames.has(b));
      expect(external.length).toBeGreaterThan(0);
      for (const base of external) expect(pinned(base), base).toBe(true);
      const node = external.filter((b) => b.startsWith('node:'));
      expect(node.length).toBeGreaterThan(0);
      for (const base of node) expect(base).toMatch(/^node:20\.\d+\.\d+-bookworm-slim@sha256:[0-9a-f]{64}$/);
    });

    it('installs from the lockfile with npm ci, never npm install', () => {
      expect(final.body.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
      for (const run of runs) expect(run).not.toMatch(/\bnpm (install|i|add)\b/);
    });

    it('runs as a numeric non-root user, and writes its cache under /tmp', () => {
      const user = final.body.filter((i) => i.op === 'USER').at(-1)?.args;
      expect(user).toMatch(/^\d+(:\d+)?$/);
      expect(Number(user?.split(':')[0])).toBeGreaterThan(0);
      const env = final.body
        .filter((i) => i.op === 'ENV')
        .map((i) => i.args)
        .join(' ');
      expect(env).toMatch(/\bTFJS_DDP_CACHE=\/tmp\//);
      expect(env).toMatch(/\bHOME=\/tmp\b/);
    });

    it('starts the tfjs-ddp CLI, linked to the bin that packages/cli declares', () => {
      const bin = (JSON.parse(read('packages/cli/package.json')) as { bin: Record<string, string> }).bin['tfjs-ddp'];
      expect(final.body.find((i) => i.op === 'ENTRYPOINT')?.args).toBe('["tfjs-ddp"]');
      expect(
        final.body.some(
          (i) => i.op === 'RUN' && i.args.includes(`ln -s /app/packages/cli/${bin} /usr/local/bin/tfjs-ddp`),
        ),
      ).toBe(true);
      expect(final.body.find((i) => i.op === 'WORKDIR')?.args).toBe('/app');
    });

    it('copies only paths that exist and that .dockerignore lets into the build context', () => {
      const copies = stages.flatMap((s) => s.body.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')));
      expect(copies.length).toBeGreaterThan(0);
      for (const copy of copies) {
        const sources = copy.args.split(' ').slice(0, -1);
        for (const source of sources) {
          expect(existsSync(join(ROOT, source)), `${file}: COPY ${source}`).toBe(true);
          expect(
            filesUnder(source).filter(inBuildContext).length,
            `${file}: COPY ${source} is in the context`,
          ).toBeGreaterThan(0);
        }
      }
    });
  });

  it('.dockerignore keeps local builds and dependencies out of the context', () => {
    expect(inBuildContext('packages/common/src/index.ts')).toBe(true);
    expect(inBuildContext('packages/cli/package.json')).toBe(true);
    expect(inBuildContext('package-lock.json')).toBe(true);
    expect(inBuildContext('node_modules/yaml/package.json')).toBe(false);
    expect(inBuildContext('packages/common/dist/index.js')).toBe(false);
    expect(inBuildContext('packages/cli/node_modules/x/index.js')).toBe(false);
    expect(inBuildContext('runs/linear/summary.json')).toBe(false);
  });

  it('the CPU image builds tfjs-node and fails if it does not load, unless the build asks TFJS_NODE=skip', () => {
    const body = parseDockerfile(read('deploy/Dockerfile')).at(-1)!.body;
    const install = body.filter((i) => i.op === 'RUN').find((i) => i.args.includes('npm ci'))?.args ?? '';
    expect(install).toContain('npm rebuild @tensorflow/tfjs-node ');
    expect(install).toContain(`node -e "require('@tensorflow/tfjs-node')"`);
    // Leaving it out takes a build argument; by default the build still fails without it.
    expect(body.filter((i) => i.op === 'ARG').map((i) => i.args)).toContain('TFJS_NODE=required');
    expect(install).toContain('if [ "$TFJS_NODE" = skip ]; then');
  });

  it('the GPU image runs tfjs-node-gpu 4.x on CUDA 11.2 with cuDNN 8, and fails the build if it does not load', () => {
    const stages = parseDockerfile(read('deploy/Dockerfile.gpu'));
    const final = stages.at(-1)!;
    expect(final.base).toMatch(/^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+(@sha256:[0-9a-f]{64})?$/);
    const common = JSON.parse(read('packages/common/package.json')) as { optionalDependencies: Record<string, string> };
    expect(common.optionalDependencies['@tensorflow/tfjs-node-gpu']).toMatch(/^4\./);
    const install = final.body.find((i) => i.op === 'RUN' && i.args.includes('npm ci'))?.args ?? '';
    // The install script is what downloads libtensorflow; && makes any failure fail the build.
    expect(install).toMatch(/npm ci [^&]*--ignore-scripts/);
    expect(install).toContain('&& npm rebuild @tensorflow/tfjs-node-gpu');
    expect(install).toContain(`&& node -e "require('@tensorflow/tfjs-node-gpu')"`);
    // Node comes from the pinned Node image, not from a package repository.
    const nodeStage = stages.find((s) => s.base.startsWith('node:') && s.body.length === 0)?.name;
    expect(final.body).toContainEqual({
      op: 'COPY',
      args: `--from=${nodeStage} /usr/local/bin/node /usr/local/bin/node`,
    });
  });
});

// --- Compose stack --------------------------------------------------------------------------------

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  working_dir?: string;
}

const compose = YAML.parse(read('deploy/compose.yaml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const tfjsServices = Object.entries(services).filter(([, s]) => s.build);
const workers = tfjsServices.filter(([, s]) => s.command?.[0] === 'worker');
/** Compose's ${VAR:-default} with VAR unset. */
const interpolate = (value: string) => value.replace(/\$\{\w+:-([^}]*)\}/g, '$1');
const hostPath = (source: string) => posix.join('deploy', source);
const port = (addr = '') => Number(addr.split(':').pop());

/** The host path or named volume mounted at `target`, if any. */
function mountAt(s: Service, target: string): string | undefined {
  return s.volumes?.map((v) => v.split(':')).find(([, t]) => t === target)?.[0];
}

describe('deploy/compose.yaml', () => {
  it('runs NATS, the coordinator, two workers, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual([
      'coordinator',
      'grafana',
      'nats',
      'prometheus',
      'worker-1',
      'worker-2',
    ]);
    expect(workers.length).toBe(2);
  });

  it('pins every image it pulls by digest, and builds its own from deploy/Dockerfile', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) {
        expect(s.build, name).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      } else {
        expect(s.image, name).toMatch(/:[\w.-]+@sha256:[0-9a-f]{64}$/);
      }
    }
  });

  it('mounts only host paths that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [source] of (s.volumes ?? []).map((v) => v.split(':'))) {
        if (source.startsWith('.')) expect(existsSync(join(ROOT, hostPath(source))), `${name}: ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${source}`).toContain(source);
      }
    }
  });

  it('runs the tfjs-ddp containers read-only, writing only to /tmp and the output volume', () => {
    for (const [name, s] of tfjsServices) {
      expect(s.read_only, name).toBe(true);
      expect(s.tmpfs, name).toContain('/tmp');
    }
    const coordinator = services.coordinator;
    expect(coordinator.working_dir).toBe('/output');
    expect(compose.volumes).toHaveProperty(mountAt(coordinator, '/output') ?? 'no volume at /output');
  });

  it('gives every process the same job, one that needs no data files', () => {
    const jobs = new Set(tfjsServices.map(([, s]) => interpolate(s.environment?.TFJS_DDP_JOB ?? '')));
    expect(jobs.size).toBe(1);
    const [job] = jobs;
    const inContainer = tfjsServices.map(([, s]) => mountAt(s, '/examples'));
    expect(new Set(inContainer)).toEqual(new Set(['../examples']));
    const file = hostPath(job.replace(/^\/examples/, '../examples'));
    const spec = parseJobSpec(read(file), join(ROOT, file));
    for (const source of [spec.data.train, spec.data.test]) {
      if (source) expect(source.type, `${file} needs no files`).toMatch(/^synthetic-/);
    }
  });

  it('starts training once both workers joined, each under its own id', () => {
    expect(Number(services.coordinator.environment?.TFJS_DDP_MIN_WORKERS)).toBe(workers.length);
    const ids = workers.map(([, s]) => s.environment?.TFJS_DDP_WORKER_ID);
    expect(new Set(ids).size).toBe(workers.length);
  });

  it('has Prometheus scrape the coordinator and every worker where they serve /metrics', () => {
    const config = YAML.parse(read('deploy/prometheus.yml')) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const targets = config.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets)).sort();
    const expected = [
      `coordinator:${port(services.coordinator.environment?.TFJS_DDP_STATUS_ADDR)}`,
      ...workers.map(([name, s]) => `${name}:${port(s.environment?.TFJS_DDP_METRICS_ADDR)}`),
    ].sort();
    expect(targets).toEqual(expected);
    expect(mountAt(services.prometheus, '/etc/prometheus/prometheus.yml')).toBe('./prometheus.yml');
  });

  it('provisions Grafana with the Prometheus data source and the dashboard folder it mounts', () => {
    const grafana = services.grafana;
    const provisioning = mountAt(grafana, '/etc/grafana/provisioning');
    expect(provisioning).toBe('./grafana/provisioning');
    const datasources = YAML.parse(read('deploy/grafana/provisioning/datasources/prometheus.yaml')) as {
      datasources: { type: string; url: string }[];
    };
    const url = new URL(datasources.datasources[0].url);
    expect(Object.keys(services)).toContain(url.hostname);
    expect(url.port).toBe('9090');
    const providers = YAML.parse(read('deploy/grafana/provisioning/dashboards/tfjs-ddp.yaml')) as {
      providers: { options: { path: string } }[];
    };
    const dashboards = mountAt(grafana, providers.providers[0].options.path);
    expect(dashboards).toBe('./grafana/dashboards');
    expect(existsSync(join(ROOT, hostPath(dashboards!), 'tfjs-ddp.json'))).toBe(true);
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(
      `${providers.providers[0].options.path}/tfjs-ddp.json`,
    );
  });

  it('gives NATS JetStream and an 8MB max_payload', () => {
    const conf = read('deploy/nats/nats.conf');
    expect(mountAt(services.nats, '/etc/nats/nats.conf')).toBe('./nats/nats.conf');
    expect(conf).toMatch(/^max_payload: 8MB$/m);
    expect(conf).toMatch(/^jetstream \{[^}]*store_dir: \/data/m);
    expect(mountAt(services.nats, '/data')).toBe('nats-data');
  });

  it('gives NATS one user per role and each container only its own role’s password', () => {
    // The roles' one definition (nats-roles.ts), which nats-roles.test.ts runs on a real nats-server.
    expect(read('deploy/nats/nats.conf')).toContain(authorizationBlock(DEPLOYMENT_ROLE_USERS));
    const natsEnv = services.nats.environment ?? {};
    const passwordOf = (role: string) => natsEnv[`NATS_${role.toUpperCase()}_PASSWORD`];
    // The block reads each role's password from the variable the compose file sets for that role.
    for (const u of DEPLOYMENT_ROLE_USERS) {
      expect(u.password, u.role).toBe(`$NATS_${u.role.toUpperCase()}_PASSWORD`);
      expect(passwordOf(u.role), u.role).toBeTruthy();
    }
    expect(new Set(DEPLOYMENT_ROLE_USERS.map((u) => interpolate(passwordOf(u.role) ?? ''))).size).toBe(3);
    for (const [name, s] of tfjsServices) {
      const role = s.command?.[0] === 'coordinator' ? 'coordinator' : 'worker';
      expect(s.environment?.TFJS_DDP_NATS_USER, name).toBe(role);
      expect(s.environment?.TFJS_DDP_NATS_PASSWORD, name).toBe(passwordOf(role));
    }
  });

  it.skipIf(!hasCommand('nats-server'))('has a nats.conf that nats-server accepts', () => {
    const env = {
      ...process.env,
      NATS_COORDINATOR_PASSWORD: 'c',
      NATS_WORKER_PASSWORD: 'w',
      NATS_OBSERVER_PASSWORD: 'o',
    };
    const r = spawnSync('nats-server', ['-t', '-c', join(ROOT, 'deploy/nats/nats.conf')], { encoding: 'utf8', env });
    expect(r.status, r.stderr + r.stdout).toBe(0);
  });

  it.skipIf(!hasCommand('promtool'))('has a prometheus.yml that promtool accepts', () => {
    const r = spawnSync('promtool', ['check', 'config', join(ROOT, 'deploy/prometheus.yml')], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
  });
});
