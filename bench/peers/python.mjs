// Runs the PyTorch side of the benchmarks: finds a Python with torch (saying how to install it
// when there is none; the benchmarks install nothing themselves) and starts one Python process per
// rank of a torch.distributed job, each limited to one compute thread. Rank 0 prints one JSON
// document on its last stdout line; everything else goes to stderr, prefixed with the rank. The
// ranks are the benchmark's peers (bench/allreduce/peer.mjs): killAllPeers ends them too.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '@tfjs-ddp/common';
import { track } from '../allreduce/peer.mjs';

export const INSTALL_HINT =
  'The PyTorch side of this benchmark needs torch (CPU build is enough) and numpy: pip install torch numpy ' +
  '(or pip install numpy torch --index-url https://download.pytorch.org/whl/cpu). ' +
  'Set TFJS_DDP_PYTHON to choose the Python interpreter (default: python3).';

/**
 * The interpreter and torch version to use; throws with installation instructions when Python,
 * torch or numpy is missing.
 * @returns {Promise<{ python: string, torch: string }>}
 */
export async function findTorch() {
  const python = process.env.TFJS_DDP_PYTHON ?? 'python3';
  let stdout;
  try {
    ({ stdout } = await promisify(execFile)(python, [
      '-c',
      'import json, numpy, torch, torch.distributed as d; print(json.dumps([torch.__version__, d.is_gloo_available()]))',
    ]));
  } catch (err) {
    const missing = /No module named '([^']+)'/.exec(err.stderr ?? '')?.[1];
    const reason = missing
      ? `${python} has no ${missing} module`
      : `${python} could not be run (${err.code ?? err.message})`;
    throw new Error(`${reason}. ${INSTALL_HINT}`, { cause: err });
  }
  const [torch, gloo] = JSON.parse(stdout.trim().split('\n').at(-1));
  if (!gloo) throw new Error(`torch ${torch} in ${python} was built without the gloo backend. ${INSTALL_HINT}`);
  return { python, torch };
}

/**
 * Runs `script` as `world` ranks of one torch.distributed job (rendezvous on a free local port)
 * and resolves with the JSON rank 0 printed last. Rejects when any rank fails or `timeoutMs` passes.
 * @param {string} python
 * @param {URL} script
 * @param {number} world
 * @param {string[]} args  passed to every rank after --rank, --world and --port
 * @param {{ timeoutMs: number }} options
 */
export async function runTorchRanks(python, script, world, args, { timeoutMs }) {
  const port = await freePort();
  const children = [];
  const exits = [];
  let rank0Out = '';
  for (let rank = 0; rank < world; rank++) {
    const child = spawn(
      python,
      [script.pathname, '--rank', `${rank}`, '--world', `${world}`, '--port', `${port}`, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // One compute thread per rank, as every worker of ours has.
        env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
      },
    );
    children.push(child);
    // Rank 0's stdout is the result; the other ranks' is progress like their stderr.
    if (rank === 0) child.stdout.on('data', (b) => (rank0Out += b.toString()));
    track(child, `torch rank ${rank}/${world}`, rank === 0 ? [child.stderr] : [child.stdout, child.stderr]);
    exits.push(
      new Promise((resolve, reject) =>
        child.on('exit', (code, signal) => {
          if (code === 0) resolve();
          else
            reject(
              new Error(`torch rank ${rank}/${world} exited with code ${code}, signal ${signal}; see its output above`),
            );
        }),
      ),
    );
  }
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the torch ranks did not finish within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([Promise.all(exits), timeout]);
  } finally {
    clearTimeout(timer);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
  const last = rank0Out.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last);
  } catch (err) {
    throw new Error(`expected torch rank 0 to print a JSON result last, got: ${last.slice(0, 200)}`, { cause: err });
  }
}
