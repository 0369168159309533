// A small leveled logger writing one line per event to stderr, so stdout stays free for
// progress lines and machine-readable output. Level comes from TFJS_DDP_LOG (debug|info|warn|error).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function envLevel(): LogLevel {
  const v = (process.env.TFJS_DDP_LOG ?? 'info').toLowerCase();
  return v in ORDER ? (v as LogLevel) : 'info';
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function format(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(
      `${k}=${typeof v === 'string' ? JSON.stringify(v) : v instanceof Error ? JSON.stringify(v.message) : JSON.stringify(v)}`,
    );
  }
  return parts.length ? ' ' + parts.join(' ') : '';
}

export function createLogger(component: string, level: LogLevel = envLevel()): Logger {
  const min = ORDER[level];
  const emit = (l: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[l] < min) return;
    process.stderr.write(
      `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} [${component}] ${msg}${format(fields)}\n`,
    );
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (c) => createLogger(`${component}/${c}`, level),
  };
}

/** A logger that drops everything; for tests and benchmarks that measure, not narrate. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
