// The tfjs-ddp command line, run in-process through runCli with captured output.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  fileSaveHandler,
  loadJobSpec,
  NATS_ENV,
  natsOptionsFromEnv,
  natsOptionsSchema,
  natsOptionsToEnv,
} from '@tfjs-ddp/common';
import { runCli } from '../packages/cli/src/cli.js';
import { natsOptionsFromFlags } from '../packages/cli/src/commands/index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const jobsDir = join(repo, 'examples/jobs');
const exampleJobs = readdirSync(jobsDir).filter((f) => f.endsWith('.yaml'));

async function run(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

let dir: string;
/** Writes a job spec into a fresh file and returns its path. */
async function specFile(name: string, spec: unknown): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, YAML.stringify(spec));
  return path;
}

function linear(): Record<string, unknown> {
  return YAML.parse(readFileSync(join(jobsDir, 'linear.yaml'), 'utf8'));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tfjs-ddp', () => {
  it('lists its subcommands in --help', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const command of ['local', 'coordinator', 'worker', 'validate', 'evaluate', 'predict', 'data']) {
      expect(stdout).toMatch(new RegExp(`^  tfjs-ddp ${command}\\b`, 'm'));
    }
  });

  it('prints the version of its package', async () => {
    const { version } = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8'));
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('rejects an unknown command with the usage, suggesting a close one', async () => {
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^ {2}tfjs-ddp validate\b/m);
    expect(unknown.stderr).toMatch(/Unknown command: frobnicate\n$/);
    const typo = await run(['valdate']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/Did you mean validate\?\n$/);
  });

  it('rejects an unknown flag, a missing flag and a missing command', async () => {
    const unknownFlag = await run(['validate', '--job', 'x.yaml', '--jbo', 'y.yaml']);
    expect(unknownFlag.code).toBe(1);
    expect(unknownFlag.stderr).toMatch(/Unknown argument: jbo\n$/);
    const missingFlag = await run(['validate']);
    expect(missingFlag.code).toBe(1);
    expect(missingFlag.stderr).toMatch(/Missing required argument: job\n$/);
    const none = await run([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/name a command; the list is above\n$/);
  });

  it.each([
    [['local', '--workers', 'abc'], '--workers: got "abc", expected a whole number of at least 1'],
    [['local', '--workers', '2.5'], '--workers: got 2.5, expected a whole number of at least 1'],
    [['coordinator', '--min-workers', '0'], '--min-workers: got 0, expected a whole number of at least 1'],
  ])('%j is refused before anything runs, quoting what was typed', async (args, message) => {
    const { code, stderr } = await run([...args, '--job', '/nonexistent/x.yaml']);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    // Refused by the flag check: the command never ran, so it never looked for the job file.
    expect(stderr).not.toContain('/nonexistent/x.yaml');
  });

  it('validates the worker backend against its choices', async () => {
    const { code, stderr } = await run(['worker', '--job', 'x.yaml', '--backend', 'cuda']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Argument: backend, Given: "cuda", Choices: "auto", "tensorflow", "webgpu", "wasm", "cpu"/);
  });

  it.each([
    [['local', '--job', '/nonexistent/x.yaml'], /tfjs-ddp local: .*\/nonexistent\/x\.yaml/],
    [['coordinator', '--job', '/nonexistent/x.yaml'], /tfjs-ddp coordinator: .*\/nonexistent\/x\.yaml/],
    [['worker', '--job', '/nonexistent/x.yaml'], /tfjs-ddp worker: .*\/nonexistent\/x\.yaml/],
    [
      ['predict', '--model', '/nonexistent/m', '--input', 'i.csv', '--backend', 'cpu'],
      /tfjs-ddp predict: .*\/nonexistent\/m/,
    ],
    [
      ['evaluate', '--model', 'm', '--job', '/nonexistent/x.yaml', '--backend', 'cpu'],
      /tfjs-ddp evaluate: .*\/nonexistent\/x\.yaml/,
    ],
    [
      ['data', 'put', '/nonexistent/f.bin', '--bucket', 'b', '--nats', 'nats://127.0.0.1:1'],
      /tfjs-ddp data put: cannot connect to NATS/,
    ],
  ])('%j fails with exit code 1 naming what is missing', async (args, message) => {
    const { code, stderr } = await run(args as string[]);
    expect(code).toBe(1);
    expect(stderr).toMatch(message as RegExp);
  });
});

describe('tfjs-ddp evaluate', () => {
  it('with a model trained on other data says which shape the model takes and which the job has', async () => {
    const tf = await import('@tensorflow/tfjs');
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
    const modelDir = join(dir, 'two-features');
    await model.save(fileSaveHandler(modelDir));
    model.dispose();
    const job = await specFile('three-features', {
      ...linear(),
      data: {
        train: { type: 'synthetic-linear', n: 20, w: [1, 2, 3], b: 0, seed: 1 },
        test: { type: 'synthetic-linear', n: 10, w: [1, 2, 3], b: 0, seed: 2 },
      },
      earlyStopping: undefined,
    });
    const { code, stderr } = await run(['evaluate', '--model', modelDir, '--job', job, '--backend', 'cpu']);
    expect(code).toBe(1);
    expect(stderr).toContain(
      `tfjs-ddp evaluate: the test samples of ${job} have shape [3] (3 values each) but the model takes samples of shape [2] (2 values)`,
    );
  });
});

describe('a model saved from a custom module', () => {
  const moduleFixture = resolve(repo, 'tests/fixtures/models/explicit-variables.mjs');

  /**
   * A variables model saved by the fixture module, whose module.json was then pointed at another
   * module, as in files that came from elsewhere: that module leaves a marker file when imported.
   */
  async function foreignModel(): Promise<{ modelDir: string; ran: () => boolean }> {
    const tf = await import('@tensorflow/tfjs');
    const { createModel } = await import('@tfjs-ddp/common');
    const { model } = await createModel({ module: moduleFixture, params: { inputs: 3, hidden: 4 } }, tf, {
      loss: 'mse',
      seed: 1,
    });
    const modelDir = join(dir, 'from-elsewhere');
    await model.save(modelDir);
    model.dispose();
    const marker = join(dir, 'foreign-module-ran');
    const foreign = join(dir, 'foreign-module.mjs');
    await writeFile(
      foreign,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\n`,
    );
    const source = JSON.parse(readFileSync(join(modelDir, 'module.json'), 'utf8'));
    await writeFile(join(modelDir, 'module.json'), JSON.stringify({ ...source, module: foreign }));
    return { modelDir, ran: () => existsSync(marker) };
  }

  it('is loaded only with the module the user names: predict and evaluate need --module or the job file, generate refuses it', async () => {
    const { modelDir, ran } = await foreignModel();
    const samples = join(dir, 'three-features.json');
    await writeFile(
      samples,
      JSON.stringify([
        [1, 2, 3],
        [0, 0.5, -1],
      ]),
    );
    const job = await specFile('module-model', {
      ...linear(),
      model: { module: moduleFixture, params: { inputs: 3, hidden: 4 } },
      data: {
        train: { type: 'synthetic-linear', n: 20, w: [1, 2, 3], b: 0, seed: 1 },
        test: { type: 'synthetic-linear', n: 10, w: [1, 2, 3], b: 0, seed: 2 },
      },
      earlyStopping: undefined,
    });
    const unnamed = await run(['predict', '--model', modelDir, '--input', samples, '--backend', 'cpu']);
    expect(unnamed.code).toBe(1);
    expect(unnamed.stderr).toContain(`tfjs-ddp predict: ${modelDir} holds a model of a custom module`);
    expect(unnamed.stderr).toContain('give it with --module PATH');
    const generated = await run(['generate', '--model', modelDir, '--backend', 'cpu']);
    expect(generated.code).toBe(1);
    expect(generated.stderr).toContain(
      `tfjs-ddp generate: ${modelDir} holds a model of a custom module, not a transformer-lm`,
    );
    expect(ran(), 'the module named by the saved module.json was imported').toBe(false);

    const named = await run([
      'predict',
      '--model',
      modelDir,
      '--input',
      samples,
      '--module',
      moduleFixture,
      '--backend',
      'cpu',
    ]);
    expect(named.stderr).not.toContain('tfjs-ddp predict:');
    expect(named.code).toBe(0);
    expect(JSON.parse(named.stdout).count).toBe(2);
    const fromJob = await run(['evaluate', '--model', modelDir, '--job', job, '--backend', 'cpu']);
    expect(fromJob.code).toBe(0);
    expect(JSON.parse(fromJob.stdout).count).toBe(10);
    expect(ran(), 'the module named by the saved module.json was imported').toBe(false);
  });
});

describe('tfjs-ddp validate', () => {
  it.each(exampleJobs)('accepts examples/jobs/%s and prints it resolved', async (file) => {
    const path = join(jobsDir, file);
    const { code, stdout, stderr } = await run(['validate', '--job', path]);
    expect(code).toBe(0);
    expect(YAML.parse(stdout)).toEqual(JSON.parse(JSON.stringify(await loadJobSpec(path))));
    expect(stderr).toMatch(new RegExp(`^${path}: valid \\(specHash [0-9a-f]{64}\\)\\n$`));
  });

  it('prints JSON with --json', async () => {
    const path = join(jobsDir, 'custom-loop.yaml');
    const { code, stdout } = await run(['validate', '--job', path, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      name: 'custom-loop',
      model: { module: join(repo, 'examples/models/custom-logreg.mjs') },
    });
  });

  it('names the unknown key and the key that was probably meant', async () => {
    const path = await specFile('typo', { ...linear(), batchsize: 32 });
    const { code, stdout, stderr } = await run(['validate', '--job', path]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`${path}: batchsize: unknown key; did you mean "batchSize"?\n${path}: 1 problem\n`);
  });

  it('names a bad enum value, a missing field and a metric the loss does not allow, all at once', async () => {
    const { epochs: _epochs, ...spec } = linear();
    const path = await specFile('broken', {
      ...spec,
      optimizer: { type: 'adamw', learningRate: 0.1 },
      metrics: ['f1'],
    });
    const { code, stderr } = await run(['validate', '--job', path]);
    expect(code).toBe(1);
    expect(stderr.split('\n')).toEqual([
      `${path}: optimizer.type: got "adamw", expected one of sgd, momentum, adam, rmsprop, adagrad, adadelta; did you mean "adam"?`,
      `${path}: epochs: required but missing; expected a number`,
      `${path}: metrics[0]: got "f1" with loss "mse"; f1 is defined for binary 0/1 labels only, so it needs loss binaryCrossentropy (use accuracy otherwise)`,
      `${path}: 3 problems`,
      '',
    ]);
  });

  it('names the file it cannot read', async () => {
    const { code, stderr } = await run(['validate', '--job', join(dir, 'missing.yaml')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/missing\.yaml: cannot read the job spec \(ENOENT/);
  });
});

describe('environment variables', () => {
  const linearPath = join(jobsDir, 'linear.yaml');

  it('set a flag that the command line leaves out', async () => {
    const { code, stderr } = await run(['validate'], { TFJS_DDP_JOB: linearPath });
    expect(code).toBe(0);
    expect(stderr).toMatch(/linear\.yaml: valid/);
  });

  it('lose to the flag given on the command line', async () => {
    const { code } = await run(['validate', '--job', linearPath], { TFJS_DDP_JOB: join(dir, 'missing.yaml') });
    expect(code).toBe(0);
  });

  it('are checked like the flag they set', async () => {
    const backend = await run(['worker', '--job', 'x.yaml'], { TFJS_DDP_BACKEND: 'cuda' });
    expect(backend.code).toBe(1);
    expect(backend.stderr).toMatch(/Argument: backend, Given: "cuda"/);
    const workers = await run(['local', '--job', 'x.yaml'], { TFJS_DDP_WORKERS: 'four' });
    expect(workers.code).toBe(1);
    expect(workers.stderr).toMatch(
      /TFJS_DDP_WORKERS: got "four", expected a whole number of at least 1 \(it sets --workers\)/,
    );
  });

  it('are listed in each command help, with the NATS flags on the transport variables', async () => {
    const { stdout } = await run(['coordinator', '--help'], { TFJS_DDP_NATS_PASSWORD: 's3cret' });
    expect(stdout).toMatch(/^ {2}--job +TFJS_DDP_JOB$/m);
    expect(stdout).toMatch(/^ {2}--status-addr +TFJS_DDP_STATUS_ADDR$/m);
    expect(stdout).toMatch(/^ {2}--min-workers +TFJS_DDP_MIN_WORKERS$/m);
    expect(stdout).toMatch(/^ {2}--nats +TFJS_DDP_NATS_URL$/m);
    expect(stdout).toMatch(/^ {2}--nats-creds +TFJS_DDP_NATS_CREDS_FILE$/m);
    expect(stdout).toMatch(/\[default: \$TFJS_DDP_NATS_PASSWORD\]/);
    expect(stdout).not.toContain('s3cret');
  });
});

describe('NATS flags', () => {
  it('map onto the transport options', () => {
    const options = natsOptionsFromFlags({
      nats: 'nats://a:4222, nats://b:4222',
      'nats-user': 'u',
      'nats-password': 'p',
      'nats-token': 't',
      'nats-creds': '/c.creds',
      'nats-nkey': '/seed.nk',
      'nats-tls-ca': '/ca.pem',
      'nats-tls-cert': '/cert.pem',
      'nats-tls-key': '/key.pem',
    });
    expect(options).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222'],
      user: 'u',
      pass: 'p',
      token: 't',
      credsFile: '/c.creds',
      nkeyFile: '/seed.nk',
      tls: { caFile: '/ca.pem', certFile: '/cert.pem', keyFile: '/key.pem' },
    });
    expect(natsOptionsSchema.parse(options).servers).toEqual(['nats://a:4222', 'nats://b:4222']);
  });

  it('leave the server to the transport default and TLS off when not given', () => {
    expect(natsOptionsSchema.parse(natsOptionsFromFlags({})).servers).toEqual(['nats://127.0.0.1:4222']);
    expect(natsOptionsSchema.parse(natsOptionsFromFlags({ nats: ' , ' })).servers).toEqual(['nats://127.0.0.1:4222']);
    expect(natsOptionsFromFlags({}).tls).toBeUndefined();
  });

  it('reach a worker process as the variables it reads back into the same options', () => {
    const options = {
      servers: ['nats://a:4222', 'nats://b:4222'],
      user: 'u',
      pass: 'p',
      token: 't',
      credsFile: '/c.creds',
      nkeyFile: '/seed.nk',
      tls: { caFile: '/ca.pem', certFile: '/cert.pem', keyFile: '/key.pem' },
    };
    const env = natsOptionsToEnv(options);
    expect(env).toMatchObject({ [NATS_ENV.servers]: 'nats://a:4222,nats://b:4222', [NATS_ENV.pass]: 'p' });
    expect(natsOptionsFromEnv(env)).toEqual(options);
    expect(natsOptionsToEnv({ user: 'u' })).toEqual({ [NATS_ENV.user]: 'u' });
  });
});
