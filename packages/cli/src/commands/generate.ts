// `tfjs-ddp generate`: text sampled from a trained language model (a transformer-lm job's
// output/model), continuing a prompt.
import { randomInt } from 'node:crypto';
import type { CommandModule } from 'yargs';
import {
  createLogger,
  generate,
  loadModel,
  ModelModuleRequiredError,
  selectBackend,
  TransformerLM,
  type BackendRequest,
} from '@tfjs-ddp/common';
import { withEnv } from '../env.js';
import type { CliContext } from './context.js';
import { backendFlag, wholeNumberFlag } from './shared-flags.js';

const flags = {
  model: {
    type: 'string',
    demandOption: true,
    describe: 'directory of a trained transformer-lm (the output/model of a job)',
  },
  prompt: { type: 'string', default: '', describe: 'text the sample continues; empty: the start of a document' },
  'max-tokens': wholeNumberFlag('max-tokens', 'tokens (bytes) to generate at most', 200),
  temperature: {
    type: 'number',
    default: 0.8,
    describe: 'below 1 sharpens the distribution, above 1 flattens it; 0 always takes the most likely token',
  },
  'top-k': { type: 'number', default: 40, describe: 'sample among the k most likely tokens only; 0: all' },
  seed: { type: 'number', describe: 'seed of the sampling; the same seed and prompt give the same text' },
  backend: backendFlag,
} as const;

export interface GenerateArgs {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed?: number;
  backend?: BackendRequest;
}

export async function runGenerate(ctx: CliContext, args: GenerateArgs): Promise<number> {
  try {
    const backend = await selectBackend(args.backend ?? 'auto', createLogger('generate'));
    const model = await loadModel(args.model, backend.tf).catch((err: unknown) => {
      // A custom module's model is never a language model: say so without running its module.
      if (err instanceof ModelModuleRequiredError) {
        throw new Error(
          `${args.model} holds a model of a custom module, not a transformer-lm; generate samples text from transformer-lm models`,
          { cause: err },
        );
      }
      throw err;
    });
    try {
      if (!(model instanceof TransformerLM)) {
        throw new Error(
          `${args.model} holds a ${model.kind} model, not a transformer-lm; generate samples text from language models`,
        );
      }
      const seed = args.seed ?? randomInt(2 ** 31);
      const sample = await generate(model, args.prompt, {
        maxTokens: args.maxTokens,
        temperature: args.temperature,
        topK: args.topK,
        seed,
      });
      ctx.stdout(`${args.prompt}${sample.completion}\n`);
      ctx.stderr(
        `${sample.tokens.length} tokens, seed ${seed}${sample.stop === 'endOfText' ? ', ended at end of text' : ''}\n`,
      );
    } finally {
      model.dispose();
    }
    return 0;
  } catch (err) {
    ctx.stderr(`tfjs-ddp generate: ${(err as Error).message}\n`);
    return 1;
  }
}

export function generateCommand(ctx: CliContext): CommandModule {
  return {
    command: 'generate',
    describe: 'sample text from a trained language model',
    builder: (y) =>
      withEnv(y.options(flags), flags, ctx.env).check((argv) => {
        const { temperature, topK } = argv as unknown as { temperature: number; topK: number };
        if (!(temperature >= 0)) return `--temperature: got ${temperature}, expected a number >= 0`;
        if (!(Number.isInteger(topK) && topK >= 0)) return `--top-k: got ${topK}, expected a whole number >= 0`;
        return true;
      }),
    handler: (argv) => ctx.run(() => runGenerate(ctx, argv as never)),
  };
}
