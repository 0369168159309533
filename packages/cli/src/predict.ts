// `tfjs-ddp predict` and `tfjs-ddp evaluate`: use a trained model (a job's output/model) outside
// the cluster, on a file of samples or on the job's own test set.
import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  createLogger,
  createModel,
  csvRecords,
  evaluate,
  gunzipIfCompressed,
  loadModel,
  loadSource,
  ModelModuleRequiredError,
  lossByName,
  loadJobSpec,
  parseIdxImages,
  selectBackend,
  LayersTrainableModel,
  TransformerLM,
  tokenCrossEntropy,
  type BackendRequest,
  type LossFn,
  type Tf,
  type TrainableModel,
} from '@tfjs-ddp/common';
import type { CliContext } from './commands/context.js';

export interface Samples {
  values: Float32Array;
  /** Shape of one sample. */
  shape: number[];
  count: number;
}

/** Reads samples from a .json array, an IDX images file (.gz or raw) or a CSV with a header (every column a feature). */
export async function readSamples(path: string): Promise<Samples> {
  const bytes = await gunzipIfCompressed(new Uint8Array(await readFile(path)), path);
  const ext = extname(path.replace(/\.gz$/, '')).toLowerCase();
  if (ext === '.json') {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!Array.isArray(parsed) || parsed.length === 0)
      throw new Error(`${path}: expected a non-empty JSON array of samples`);
    const shape = shapeOf(parsed[0]);
    const flat = (parsed as unknown[]).flat(Infinity as 1) as unknown[];
    if (flat.some((v) => typeof v !== 'number')) throw new Error(`${path}: every value must be a number`);
    const per = shape.reduce((a, b) => a * b, 1);
    if (flat.length !== per * parsed.length)
      throw new Error(`${path}: samples differ in shape; the first is [${shape.join(', ')}]`);
    return { values: Float32Array.from(flat as number[]), shape, count: parsed.length };
  }
  if (ext === '.csv') {
    const text = new TextDecoder().decode(bytes);
    const rows = [...csvRecords(text, path)];
    const [header, ...data] = rows;
    if (!header || data.length === 0) throw new Error(`${path}: expected a header row and at least one sample`);
    const width = header.cells.length;
    const values = new Float32Array(data.length * width);
    data.forEach((r, i) => {
      if (r.cells.length !== width)
        throw new Error(`${path} line ${r.line}: ${r.cells.length} cells, the header has ${width}`);
      r.cells.forEach((c, j) => {
        const v = Number(c);
        if (c === '' || !Number.isFinite(v))
          throw new Error(`${path} line ${r.line} column ${header.cells[j]}: "${c}" is not a number`);
        values[i * width + j] = v;
      });
    });
    return { values, shape: [width], count: data.length };
  }
  const images = parseIdxImages(bytes, path);
  const values = new Float32Array(images.pixels.length);
  for (let i = 0; i < values.length; i++) values[i] = images.pixels[i] / 255;
  return { values, shape: [images.rows, images.cols, 1], count: images.count };
}

function shapeOf(v: unknown): number[] {
  return Array.isArray(v) ? [v.length, ...shapeOf(v[0])] : [];
}

export interface PredictArgs {
  model: string;
  input: string;
  output?: string;
  /** The module of a model saved from a custom module (--module). */
  module?: string;
  backend?: BackendRequest;
}

/** loadModel, saying how to name the module (`how`, for this command) when a custom module's model needs it. */
async function loadSavedModel(path: string, tf: Tf, module: string | undefined, how: string): Promise<TrainableModel> {
  try {
    return await loadModel(path, tf, { module });
  } catch (err) {
    if (err instanceof ModelModuleRequiredError) throw new Error(`${err.message}; ${how}`, { cause: err });
    throw err;
  }
}

/**
 * The shape the model takes one sample in, when it says (a Layers model does); samples of shape
 * `shape` must have as many values. Throws, naming both shapes and `what` the samples are, when they
 * do not fit: tfjs's own error names a layer and a batch shape, not what the user has to change.
 */
function fitSamples(model: TrainableModel, shape: number[], what: string): number[] {
  if (!(model instanceof LayersTrainableModel)) return shape;
  const inputShape = model.model.inputs[0].shape.slice(1);
  const size = (s: (number | null)[]) => s.reduce((a: number, b) => a * (b ?? 1), 1);
  if (inputShape.some((d) => d === null) || size(inputShape) === size(shape)) {
    return inputShape.some((d) => d === null) ? shape : (inputShape as number[]);
  }
  throw new Error(
    `${what} have shape [${shape.join(', ')}] (${size(shape)} values each) but the model takes samples of shape ` +
      `[${inputShape.join(', ')}] (${size(inputShape)} values): it was trained on other data; use the model of this job, or data of that shape`,
  );
}

export async function predict(
  model: TrainableModel,
  samples: Samples,
  tf: typeof import('@tensorflow/tfjs'),
): Promise<number[][]> {
  const inputShape = fitSamples(model, samples.shape, 'the samples');
  const x = tf.tensor(samples.values, [samples.count, ...inputShape]);
  const held = [x];
  try {
    const y = tf.tidy(() => tf.reshape(model.predict(x), [samples.count, -1]));
    held.push(y);
    return (await y.array()) as number[][];
  } finally {
    tf.dispose(held);
  }
}

export async function runPredict(ctx: CliContext, args: PredictArgs): Promise<number> {
  try {
    const backend = await selectBackend(args.backend ?? 'auto', createLogger('predict'));
    const model = await loadSavedModel(
      args.model,
      backend.tf,
      args.module,
      'give it with --module PATH (the model.module of the job that trained it)',
    );
    let predictions: number[][];
    try {
      predictions = await predict(model, await readSamples(args.input), backend.tf);
    } finally {
      model.dispose();
    }
    const out = JSON.stringify({ count: predictions.length, predictions }) + '\n';
    if (args.output) {
      await writeFile(args.output, out);
      ctx.stderr(`wrote ${predictions.length} predictions to ${args.output}\n`);
    } else ctx.stdout(out);
    return 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp predict: ${(err as Error).message}\n`);
    return 1;
  }
}

export interface EvaluateArgs {
  model: string;
  job: string;
  /** The module of a model saved from a custom module; default: the job's model.module. */
  module?: string;
  backend?: BackendRequest;
}

export async function runEvaluate(ctx: CliContext, args: EvaluateArgs): Promise<number> {
  try {
    const spec = await loadJobSpec(args.job);
    if (!spec.data.test) throw new Error(`${args.job} names no data.test set to evaluate on`);
    const backend = await selectBackend(args.backend ?? 'auto', createLogger('evaluate'));
    const tf = backend.tf;
    let moduleLoss: LossFn | undefined;
    if (!spec.loss && 'module' in spec.model) {
      // A model module's own loss: build the job's model once to get it (and free its variable names).
      const built = await createModel(spec.model, tf, { seed: spec.seed });
      built.model.dispose();
      moduleLoss = built.loss;
    }
    const module = args.module ?? ('module' in spec.model ? spec.model.module : undefined);
    const test = await loadSource(spec.data.test);
    const model = await loadSavedModel(
      args.model,
      tf,
      module,
      `${args.job} names no model.module; give the module with --module PATH, or evaluate with the job file that trained the model`,
    );
    const held: { dispose(): void }[] = [model];
    let result: Awaited<ReturnType<typeof evaluate>>;
    // A language model scores next-token predictions from logits; every other model with the job's loss.
    const language = model instanceof TransformerLM;
    try {
      const loss = language ? tokenCrossEntropy : spec.loss ? lossByName(spec.loss) : moduleLoss;
      if (!loss) throw new Error(`${args.job} names no loss; evaluate needs one`);
      const inputShape = fitSamples(model, test.featureShape, `the test samples of ${args.job}`);
      const x = tf.tensor(test.x, [test.count, ...inputShape]);
      held.push(x);
      const y = tf.tensor(test.y, [test.count, ...(test.labelShape ?? [1])]);
      held.push(y);
      result = await evaluate(model, { x, y }, loss, language ? [] : spec.metrics);
    } finally {
      for (const h of held) h.dispose();
    }
    const extra = language ? { perplexity: Math.exp(result.loss) } : {};
    ctx.stdout(JSON.stringify({ count: result.count, loss: result.loss, ...result.metrics, ...extra }) + '\n');
    return 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp evaluate: ${(err as Error).message}\n`);
    return 1;
  }
}
