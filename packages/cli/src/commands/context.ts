// What a command handler may touch: the environment, the two output streams and the exit code.
// Passing these in (rather than using process directly) lets tests run the CLI in-process.
import type { Env } from '../env.js';

export interface CliContext {
  env: Env;
  stdout(text: string): void;
  stderr(text: string): void;
  setExitCode(code: number): void;
}
