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

export const backendFlag = {
  choices: BACKEND_REQUESTS,
  default: 'auto',
  describe: 'compute backend; auto tries tensorflow (CUDA), webgpu, tensorflow (CPU), wasm, then cpu',
} as const satisfies Options;

/** A yargs check that the named number flags, when given, are whole numbers of at least 1. */
export function positiveIntegers(...flags: string[]): (argv: Record<string, unknown>) => true | string {
  return (argv) => {
    for (const flag of flags) {
      const value = argv[flag];
      if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 1)) {
        return `--${flag}: got ${JSON.stringify(value)}, expected a whole number of at least 1`;
      }
    }
    return true;
  };
}
