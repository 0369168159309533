// A logger that keeps what it is told, for tests that check the log names what happened.
import type { Logger } from '@tfjs-ddp/common';

export interface CapturedLog {
  readonly log: Logger;
  /** Every line so far: `LEVEL [component] message {fields as JSON}`. */
  readonly lines: string[];
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const make = (component: string): Logger => {
    const emit = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      void lines.push(`${level} [${component}] ${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`);
    return {
      debug: emit('DEBUG'),
      info: emit('INFO'),
      warn: emit('WARN'),
      error: emit('ERROR'),
      child: (c) => make(`${component}/${c}`),
    };
  };
  return { log: make('local'), lines };
}
