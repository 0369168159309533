// What a command handler may touch: the environment, the two output streams, and where to hand its
// work.
// Passing these in (rather than using process directly) lets tests run the CLI in-process.
import type { Env } from '../env.js';

export interface CliContext {
  env: Env;
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * The command's work, resolving to its exit code. It runs after yargs has checked every flag: with
   * a parse callback, yargs reports a failed check only after it has called the handler.
   */
  run(task: () => Promise<number>): void;
}
