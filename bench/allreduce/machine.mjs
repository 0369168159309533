// Where the figures were measured: the report header names the date, CPU, core count, OS and
// the Node and nats-server versions, since results mean little without them.
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';

export async function describeMachine() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    natsServer: await natsServerVersion(),
  };
}

async function natsServerVersion() {
  // The same binary startNatsServer runs.
  const binary = process.env.TFJS_DDP_NATS_SERVER ?? 'nats-server';
  try {
    const { stdout } = await promisify(execFile)(binary, ['--version']);
    return stdout.trim().replace(/^nats-server:\s*/, '');
  } catch (err) {
    return `unknown (${binary} --version failed: ${err.message})`;
  }
}
