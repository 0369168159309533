// The container runtime for the tests: a Docker daemon that answers, or dockerd started where it is
// installed; base images built here from Debian packages (no image registry is needed), once, tagged
// with a hash of their recipe; a label on every container a test starts, so the run's teardown can
// check that none is left. Where no runtime can be had, container tests are skipped with the reason.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every container, network and volume a test creates carries this label (value: 1)... */
export const TEST_LABEL = 'tfjs-ddp.test';
/** ...and this one, whose value is the test run's id: the teardown check looks for its own run's. */
export const RUN_LABEL = 'tfjs-ddp.test.run';

/** Set by the global setup for the test processes: the runtime found (JSON) and the run's id. */
const RUNTIME_ENV = 'TFJS_DDP_TEST_CONTAINER_RUNTIME';
const RUN_ID_ENV = 'TFJS_DDP_TEST_RUN_ID';

export type ContainerRuntime = { ok: true; how: string } | { ok: false; reason: string };

// testcontainers would otherwise start its reaper, whose image must be pulled; the tests remove
// their containers themselves and the teardown check catches what they miss.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';

function docker(args: string[], timeoutMs = 30_000) {
  return spawnSync('docker', args, { encoding: 'utf8', timeout: timeoutMs });
}

function firstLine(text: string | undefined): string {
  return (text ?? '').trim().split('\n').at(-1) ?? '';
}

/** The daemon's version when one answers, else why not. */
function probe(): { version?: string; why: string } {
  const r = docker(['info', '--format', '{{.ServerVersion}}'], 15_000);
  if (r.error) return { why: `the docker CLI did not run (${r.error.message})` };
  if (r.status === 0 && r.stdout.trim()) return { version: r.stdout.trim(), why: '' };
  return { why: `docker info failed: ${firstLine(r.stderr) || `exit ${r.status}`}` };
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/**
 * Finds a runtime, starting dockerd (left running, as a system daemon, for later runs) when none
 * answers and it is installed and this process is root. TFJS_DDP_TEST_CONTAINERS=off: none.
 */
export async function findContainerRuntime(): Promise<ContainerRuntime> {
  if (process.env.TFJS_DDP_TEST_CONTAINERS === 'off')
    return { ok: false, reason: 'TFJS_DDP_TEST_CONTAINERS=off asks for no container runtime' };
  const first = probe();
  if (first.version) return { ok: true, how: `Docker ${first.version} (already running)` };
  if (!onPath('dockerd'))
    return {
      ok: false,
      reason: `no container runtime: ${first.why}, and dockerd is not installed (apt-get install -y docker.io)`,
    };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: `no container runtime: ${first.why}; dockerd is installed but starting it needs root` };
  const logPath = join(tmpdir(), 'tfjs-ddp-dockerd.log');
  const log = openSync(logPath, 'a');
  // Published ports on loopback only: a test's NATS must not be reachable from the network.
  const daemon = spawn('dockerd', ['--ip', '127.0.0.1'], { detached: true, stdio: ['ignore', log, log] });
  daemon.on('error', () => {});
  daemon.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const p = probe();
    if (p.version) return { ok: true, how: `Docker ${p.version} (started dockerd, pid ${daemon.pid}, log ${logPath})` };
    if (daemon.exitCode !== null) break;
    await sleep(250);
  }
  const last = probe();
  if (last.version) return { ok: true, how: `Docker ${last.version} (started by another process)` };
  return {
    ok: false,
    reason: `no container runtime: dockerd did not answer within 60 s (see ${logPath}): ${last.why}`,
  };
}

let cached: Promise<ContainerRuntime> | undefined;

/** The run's runtime: the one the global setup found, or found now (a test file run on its own). */
export function containerRuntime(): Promise<ContainerRuntime> {
  const fromSetup = process.env[RUNTIME_ENV];
  if (fromSetup) return Promise.resolve(JSON.parse(fromSetup) as ContainerRuntime);
  cached ??= findContainerRuntime();
  return cached;
}

/** Called by the global setup: the test processes it forks read these. */
export function publishRuntime(runtime: ContainerRuntime, runId: string): void {
  process.env[RUNTIME_ENV] = JSON.stringify(runtime);
  process.env[RUN_ID_ENV] = runId;
}

/** The labels for a container (network, volume) a test starts. */
export function testLabels(): Record<string, string> {
  return { [TEST_LABEL]: '1', [RUN_LABEL]: process.env[RUN_ID_ENV] ?? `pid-${process.pid}` };
}

/** `--label k=v` for each of {@link testLabels}, for the docker CLI. */
export function labelArgs(): string[] {
  return Object.entries(testLabels()).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
}

/** What a run left behind: its labelled containers, networks and volumes (`kind id name`). */
export function leftovers(runId: string): string[] {
  const filter = ['--filter', `label=${RUN_LABEL}=${runId}`];
  const list = (args: string[], kind: string) => {
    const r = docker([...args, ...filter]);
    // A listing that failed must not read as "nothing left".
    if (r.status !== 0)
      throw new Error(
        `docker ${args[0]} listing failed (exit ${r.status}): ${(r.stderr ?? r.error?.message ?? '').trim()}`,
      );
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => `${kind} ${l}`);
  };
  return [
    ...list(['ps', '-a', '--format', '{{.ID}} {{.Names}}'], 'container'),
    ...list(['network', 'ls', '--format', '{{.ID}} {{.Name}}'], 'network'),
    ...list(['volume', 'ls', '--format', '{{.Name}}'], 'volume'),
  ];
}

/** Removes what {@link leftovers} listed. */
export function removeLeftovers(items: string[]): void {
  for (const item of items) {
    const [kind, id] = item.split(' ');
    if (kind === 'container') docker(['rm', '-f', '-v', id]);
    else if (kind === 'network') docker(['network', 'rm', id]);
    else docker(['volume', 'rm', '-f', id]);
  }
}

/** A base image made from Debian packages with mmdebstrap and `docker import`. */
export interface BaseImageRecipe {
  /** Repository part of the tag: tfjs-ddp-test/<name>:<hash>. */
  name: string;
  /** Debian suite, e.g. bookworm. */
  suite: string;
  packages: string[];
  /** `docker import --change` instructions, e.g. ENTRYPOINT ["nats-server"]. */
  changes: string[];
  /**
   * Trust what this machine trusts: its CA bundle copied in (and NODE_EXTRA_CA_CERTS set), for a
   * machine that reaches the npm registry through a TLS-inspecting proxy. The bundle's hash is
   * part of the tag.
   */
  trustHostCAs?: boolean;
}

const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function hostCaHash(): string {
  try {
    return createHash('sha256').update(readFileSync(HOST_CA_BUNDLE)).digest('hex');
  } catch {
    return 'none';
  }
}

/** Bump when the way a recipe becomes an image changes, so old tags are not reused. */
const BUILDER_VERSION = 1;

export function baseImageTag(recipe: BaseImageRecipe): string {
  const hash = createHash('sha256')
    .update(JSON.stringify({ BUILDER_VERSION, ...recipe, hostCAs: recipe.trustHostCAs ? hostCaHash() : undefined }))
    .digest('hex')
    .slice(0, 12);
  return `tfjs-ddp-test/${recipe.name}:${hash}`;
}

/** The NATS server of the test fixture and the compose stack: Debian's nats-server (wget: the stack's health check). */
export const NATS_BASE: BaseImageRecipe = {
  name: 'nats',
  suite: 'bookworm',
  packages: ['nats-server', 'ca-certificates', 'wget'],
  changes: ['ENTRYPOINT ["nats-server"]'],
};

/** The compose stack's Prometheus: Debian's package, started as the official image starts it. */
export const PROMETHEUS_BASE: BaseImageRecipe = {
  name: 'prometheus',
  suite: 'bookworm',
  packages: ['prometheus'],
  changes: [
    'ENTRYPOINT ["/usr/bin/prometheus"]',
    'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
  ],
};

/** The base for deploy/Dockerfile here: Debian trixie's Node 20.19 and npm (the pinned node image cannot be pulled). */
export const NODE_BASE: BaseImageRecipe = {
  name: 'node',
  suite: 'trixie',
  packages: ['nodejs', 'npm', 'ca-certificates'],
  changes: [`ENV NODE_EXTRA_CA_CERTS=${HOST_CA_BUNDLE}`],
  trustHostCAs: true,
};

/**
 * The recipe's image tag, built first when this machine does not have it. Concurrent test
 * processes wait on one lock file per tag (flock), so an image is built once.
 */
export function ensureBaseImage(recipe: BaseImageRecipe): string {
  const tag = baseImageTag(recipe);
  if (docker(['image', 'inspect', tag]).status === 0) return tag;
  if (!onPath('mmdebstrap'))
    throw new Error(`cannot build the test image ${tag}: mmdebstrap is not installed (apt-get install -y mmdebstrap)`);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const changes = recipe.changes.map((c) => `--change ${quote(c)}`).join(' ');
  const hooks =
    recipe.trustHostCAs && existsSync(HOST_CA_BUNDLE)
      ? `--customize-hook=${quote(`upload ${HOST_CA_BUNDLE} ${HOST_CA_BUNDLE}`)} `
      : '';
  const script =
    `docker image inspect ${tag} >/dev/null 2>&1 && exit 0; ` +
    `set -o pipefail; mmdebstrap --quiet --variant=minbase --include=${recipe.packages.join(',')} ${hooks}${recipe.suite} - ` +
    `| docker import ${changes} - ${tag} >/dev/null && echo built`;
  const lock = join(tmpdir(), `tfjs-ddp-test-image-${tag.replace(/[/:]/g, '-')}.lock`);
  const started = Date.now();
  const r = spawnSync('flock', [lock, 'bash', '-c', script], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (r.status !== 0)
    throw new Error(
      `building the test image ${tag} (mmdebstrap ${recipe.suite} with ${recipe.packages.join(', ')}) failed: ` +
        `${firstLine(r.stderr) || r.error?.message || `exit ${r.status}`}; mmdebstrap needs root and Debian's mirror`,
    );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(
    r.stdout.trim() === 'built'
      ? `[containers] built ${tag} in ${seconds} s\n`
      : `[containers] ${tag} was built by another test process (waited ${seconds} s)\n`,
  );
  return tag;
}

export interface DockerResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the docker CLI without blocking the event loop (image builds take minutes). */
export function dockerAsync(args: string[], timeoutMs = 20 * 60_000): Promise<DockerResult> {
  return commandAsync('docker', args, timeoutMs);
}

/** Runs a command (docker, docker-compose) to its end; killed after `timeoutMs`. */
export function commandAsync(command: string, args: string[], timeoutMs: number, cwd?: string): Promise<DockerResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => void (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ status: -1, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/** The CPU image as the tests build it: deploy/Dockerfile on {@link NODE_BASE}, without tfjs-node. */
export const CPU_IMAGE = 'tfjs-ddp-test/tfjs-ddp:cpu';

/**
 * Builds deploy/Dockerfile (or another of deploy/'s Dockerfiles) from the repository at `root`,
 * tagged `tag` (so that the image and the layers it caches are not dangling, which a prune would
 * remove), one build at a time across test processes (the second finds the first's layers in the
 * cache). The image's id.
 */
export async function buildDeployImage(
  root: string,
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string>,
  target?: string,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-image-'));
  try {
    const iid = join(dir, 'iid');
    const args = ['build', '--force-rm', '-f', dockerfile, '-t', tag, '--iidfile', iid];
    for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
    if (target) args.push('--target', target);
    const lock = join(tmpdir(), 'tfjs-ddp-test-docker-build.lock');
    // The image the tag named before: once a changed source rebuilt it, it is dangling (about 1 GB).
    const before = await dockerAsync(['image', 'inspect', '--format', '{{.Id}}', tag], 60_000);
    const previous = before.status === 0 ? before.stdout.trim() : undefined;
    const started = Date.now();
    // Takes the lock's wait too; a build that finds every layer cached takes about a second.
    // --no-fork: flock execs docker, so a build killed at the deadline is killed itself, not its parent only.
    const r = await commandAsync('flock', ['--no-fork', lock, 'docker', ...args, root], 20 * 60_000);
    if (r.status !== 0)
      throw new Error(`docker ${args.join(' ')} failed (exit ${r.status}):\n${(r.stdout + r.stderr).slice(-4000)}`);
    process.stderr.write(
      `[containers] built ${dockerfile}${target ? ` --target ${target}` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    const id = (await readFile(iid, 'utf8')).trim();
    // Removed unless a container still uses it (then docker refuses, and it stays).
    if (previous && previous !== id) await dockerAsync(['image', 'rm', previous], 60_000);
    return id;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
