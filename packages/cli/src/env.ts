// Every flag can also come from the environment, which is how Kubernetes manifests and compose
// files configure the CLI: --status-addr reads TFJS_DDP_STATUS_ADDR, and the NATS flags read the
// variables the transport itself documents (NATS_ENV), so one set of names serves both. A flag on
// the command line wins over its variable; the variable wins over the built-in default.
import { NATS_ENV } from '@tfjs-ddp/common';
import type { Argv, Options } from 'yargs';

export type Env = Readonly<Record<string, string | undefined>>;

const NATS_FLAG_ENV: Readonly<Record<string, string>> = {
  nats: NATS_ENV.servers,
  'nats-user': NATS_ENV.user,
  'nats-password': NATS_ENV.pass,
  'nats-token': NATS_ENV.token,
  'nats-creds': NATS_ENV.credsFile,
  'nats-nkey': NATS_ENV.nkeyFile,
  'nats-tls-ca': NATS_ENV.caFile,
  'nats-tls-cert': NATS_ENV.certFile,
  'nats-tls-key': NATS_ENV.keyFile,
};

/** The variable that sets `--flag`: TFJS_DDP_ and the flag in upper snake case, except for the NATS flags. */
export function envVarFor(flag: string): string {
  return NATS_FLAG_ENV[flag] ?? `TFJS_DDP_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function fromEnv(raw: string, options: Options): { value: unknown } | { expected: string } {
  const { type, coerce } = options;
  if (coerce) {
    // The flag's own check, which names the flag; here the variable is what was wrong.
    try {
      return { value: (coerce as (v: unknown) => unknown)(raw) };
    } catch (err) {
      return { expected: (err as Error).message.replace(/^.*?, expected /, '') };
    }
  }
  if (type === 'number') {
    const value = Number(raw);
    return raw.trim() !== '' && Number.isFinite(value) ? { value } : { expected: 'a number' };
  }
  if (type === 'boolean') {
    if (/^(1|true|yes)$/i.test(raw)) return { value: true };
    if (/^(0|false|no)$/i.test(raw)) return { value: false };
    return { expected: 'true or false' };
  }
  return { value: raw };
}

/** The help epilogue that lists which variable sets which flag. */
function envEpilogue(flags: readonly string[]): string {
  const width = Math.max(...flags.map((f) => f.length)) + 2;
  const lines = flags.map((flag) => `  --${flag.padEnd(width)}${envVarFor(flag)}`);
  return ['Environment variables (a flag given on the command line wins):', ...lines].join('\n');
}

/**
 * Makes the environment the default of each flag in `flags` and documents the mapping in the
 * command's help. The help shows the variable's name, never its value, since some are secrets.
 */
export function withEnv<T>(y: Argv<T>, flags: Readonly<Record<string, Options>>, env: Env): Argv<T> {
  const problems: string[] = [];
  for (const [flag, options] of Object.entries(flags)) {
    const name = envVarFor(flag);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const parsed = fromEnv(raw, options);
    if ('value' in parsed) y.default(flag, parsed.value, `$${name}`);
    else problems.push(`${name}: got ${JSON.stringify(raw)}, expected ${parsed.expected} (it sets --${flag})`);
  }
  return y.epilogue(envEpilogue(Object.keys(flags))).check(() => problems.length === 0 || problems.join('\n'));
}
