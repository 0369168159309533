// Flags that several commands share, defined once so their help and checks agree.
import { BACKEND_REQUESTS } from '@tfjs-ddp/common';
import type { Options } from 'yargs';

export const jobFlag = {
  type: 'string',
  describe: 'job spec file (YAML or JSON); see examples/jobs/',
  demandOption: true,
} as const satisfies Options;

export const modelFlag = {
  type: 'string',
  demandOption: true,
  describe: 'directory of a trained model (the output/model of a job)',
} as const satisfies Options;

/** Loading a custom module's model runs the module: the user names it, the saved files never do. */
export const moduleFlag = {
  type: 'string',
  requiresArg: true,
  describe:
    "the ES module that defines the model (the job's model.module); needed for a model saved from a custom module, whose saved files are never trusted to name code",
} as const satisfies Options;

export const backendFlag = {
  choices: BACKEND_REQUESTS,
  default: 'auto',
  describe: 'compute backend; auto tries tensorflow (CUDA), webgpu, tensorflow (CPU), wasm, then cpu',
} as const satisfies Options;

/**
 * A flag that takes a whole number of at least 1. It has no yargs type on purpose: `type: 'number'`
 * turns "abc" into NaN before any check sees it, while untyped, the check (a coerce, which also runs
 * on the default and on a value from the environment) gets the number or the text as typed.
 */
export function wholeNumberFlag(flag: string, describe: string, defaultValue?: number) {
  return {
    describe: `${describe} (a whole number >= 1)`,
    requiresArg: true,
    ...(defaultValue !== undefined && { default: defaultValue }),
    coerce: (value: unknown): number => {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n === 'number' && Number.isInteger(n) && n >= 1) return n;
      throw new Error(`--${flag}: got ${JSON.stringify(value)}, expected a whole number of at least 1`);
    },
  } as const satisfies Options;
}
