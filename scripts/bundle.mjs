// `npm run bundle`: tfjs-ddp as a few self-contained ES module files for a machine that has Node
// and nothing else (no npm, no network): a GPU node, say. Writes out/bundle/ (or --out DIR):
//   tfjs-ddp.mjs          the CLI (`node tfjs-ddp.mjs local --workers 2 --job JOB --backend webgpu`)
//   tfjs-ddp-worker.mjs   the worker process the CLI's local launcher starts
//   heartbeat-thread.mjs  the worker's heartbeat thread (NATS and the codec only)
//   bench-allreduce.mjs   the all-reduce benchmark, with rank.mjs and raw-peer.mjs, its processes
//   bench-scaling.mjs     the training benchmark (--backend webgpu --without-torch on a GPU machine)
//   *.wasm                tfjs-backend-wasm's binaries
//   node_modules/webgpu/  Dawn's WebGPU for Node (index.js + the linux-x64 dawn.node), left out of
//                         the bundle since it is a native addon; only where the package is installed
// TensorFlow.js, its wasm and WebGPU backends, nats.js and everything else are inside. tfjs-node and
// tfjs-node-gpu stay outside (native, with their own libtensorflow): a bundle runs on webgpu, wasm
// or cpu. `--check` also starts the bundled CLI once (`--version`) to prove it loads.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `Usage: npm run bundle -- [--out DIR] [--check]

Bundles the CLI, the worker, the all-reduce benchmark and the training benchmark into DIR (default
out/bundle) so they run with Node alone. Run npm run build first (npm run bundle does).
  --out DIR   where to write (emptied first)
  --check     start the bundled CLI once afterwards (tfjs-ddp --version)
  --help      this text`;

// tfjs and its dependencies call require() for Node built-ins and read __dirname; an ES module has
// neither. require comes from this banner (esbuild's require shim uses a `require` in scope),
// __dirname and __filename from scripts/bundle/shims.mjs.
const BANNER = [
  "import { createRequire as __ddpCreateRequire } from 'node:module';",
  'const require = __ddpCreateRequire(import.meta.url);',
].join('\n');

const ENTRIES = {
  'tfjs-ddp': 'scripts/bundle/cli.mjs',
  'tfjs-ddp-worker': 'scripts/bundle/worker.mjs',
  // Started by the worker as a thread, by the path provide.mjs gives; it needs no bundle info itself.
  'heartbeat-thread': 'packages/worker/dist/heartbeat-thread.js',
  'bench-allreduce': 'scripts/bundle/bench-allreduce.mjs',
  'bench-scaling': 'scripts/bundle/bench-scaling.mjs',
  rank: 'bench/allreduce/rank.mjs',
  'raw-peer': 'bench/allreduce/raw-peer.mjs',
};

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: { out: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  for (const dist of [
    'packages/cli/dist/bin.js',
    'packages/worker/dist/bin.js',
    'packages/worker/dist/heartbeat-thread.js',
  ]) {
    if (!existsSync(path.join(ROOT, dist))) {
      process.stderr.write(`bundle: ${dist} is missing; run npm run build first\n`);
      return 1;
    }
  }
  const out = path.resolve(values.out ?? path.join(ROOT, 'out', 'bundle'));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const version = JSON.parse(readFileSync(path.join(ROOT, 'packages/cli/package.json'), 'utf8')).version;

  process.stderr.write(`bundle: esbuild ${Object.keys(ENTRIES).length} entries into ${out}\n`);
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, path.join(ROOT, file)])),
    outdir: out,
    outExtension: { '.js': '.mjs' },
    // Code the entries share goes into chunks once instead of into each entry. The chunks sit beside
    // the entries, so every file's import.meta.url names the bundle's folder (scripts/bundle/provide.mjs).
    splitting: true,
    chunkNames: '[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: BANNER },
    inject: [path.join(ROOT, 'scripts/bundle/shims.mjs')],
    define: { 'process.env.TFJS_DDP_BUNDLE_VERSION': JSON.stringify(version) },
    // Native addons, loaded from node_modules beside the bundle when present.
    external: ['webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    logLevel: 'warning',
    metafile: true,
  });
  if (result.errors.length) return 1;

  const wasmDir = path.dirname(
    fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm', `file://${ROOT}/packages/common/`)),
  );
  for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) {
    copyFileSync(path.join(wasmDir, f), path.join(out, f));
  }
  const webgpu = path.join(ROOT, 'node_modules', 'webgpu');
  const dawn = path.join(webgpu, 'dist', 'linux-x64', 'dawn.node');
  if (existsSync(dawn)) {
    const to = path.join(out, 'node_modules', 'webgpu');
    mkdirSync(path.join(to, 'dist', 'linux-x64'), { recursive: true });
    for (const f of ['package.json', 'index.js', 'LICENSE.md']) copyFileSync(path.join(webgpu, f), path.join(to, f));
    copyFileSync(dawn, path.join(to, 'dist', 'linux-x64', 'dawn.node'));
  } else {
    process.stderr.write(
      'bundle: the webgpu package (dawn.node for linux-x64) is not installed; the bundle cannot use webgpu\n',
    );
  }
  writeFileSync(
    path.join(out, 'README.txt'),
    `tfjs-ddp ${version}, bundled by scripts/bundle.mjs. Needs Node >= 20 only.\n` +
      'node tfjs-ddp.mjs --help; node tfjs-ddp.mjs local --workers 2 --job JOB.yaml --backend webgpu|wasm|cpu\n' +
      'node bench-allreduce.mjs --help; node bench-scaling.mjs --help\n' +
      'A nats-server binary is needed for local clusters: on PATH, or TFJS_DDP_NATS_SERVER=/path/to/nats-server.\n',
  );
  for (const f of readdirSync(out).sort()) {
    const s = statSync(path.join(out, f));
    process.stderr.write(`bundle:   ${f}${s.isDirectory() ? '/' : ` ${(s.size / 2 ** 20).toFixed(1)} MiB`}\n`);
  }
  if (values.check) {
    const v = execFileSync(process.execPath, [path.join(out, 'tfjs-ddp.mjs'), '--version'], { encoding: 'utf8' });
    process.stderr.write(`bundle: node tfjs-ddp.mjs --version -> ${v.trim()}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bundle failed: ${err.stack ?? err}\n`);
    process.exit(1);
  },
);
