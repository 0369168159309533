// The NATS connection flags shared by every command that connects, and their translation into
// the transport's NatsOptions.
import { natsOptionsFromEnv, type NatsOptions } from '@tfjs-ddp/common';
import type { InferredOptionTypes, Options } from 'yargs';
import { envVarFor } from '../env.js';

export const natsFlags = {
  nats: {
    type: 'string',
    describe:
      'NATS server URL(s), comma-separated; workers spread the all-reduce over every one listed (default nats://127.0.0.1:4222)',
  },
  'nats-user': { type: 'string', describe: 'user name for NATS' },
  'nats-password': { type: 'string', describe: 'password for NATS' },
  'nats-token': { type: 'string', describe: 'token for NATS' },
  'nats-creds': { type: 'string', describe: 'path to a NATS .creds file (JWT and nkey seed)' },
  'nats-nkey': { type: 'string', describe: 'path to a file holding an nkey seed' },
  'nats-tls-ca': { type: 'string', describe: 'CA certificate that signed the server certificate (PEM)' },
  'nats-tls-cert': { type: 'string', describe: 'client certificate for mutual TLS (PEM)' },
  'nats-tls-key': { type: 'string', describe: 'key of the client certificate (PEM)' },
} as const satisfies Record<string, Options>;

export const NATS_GROUP = 'NATS connection:';

/** The parsed NATS flags (yargs fills the kebab-case keys as well as the camel-case ones). */
export type NatsFlagValues = Partial<InferredOptionTypes<typeof natsFlags>>;

/**
 * The flags read as their environment variables would be (env.ts names each flag's variable), so
 * the flags and the variables cannot drift apart. An empty --nats leaves the server to the
 * transport's default, as no --nats does.
 */
export function natsOptionsFromFlags(flags: NatsFlagValues): NatsOptions {
  const env = Object.fromEntries(
    Object.keys(natsFlags).map((flag) => [envVarFor(flag), flags[flag as keyof typeof natsFlags]]),
  );
  const options = natsOptionsFromEnv(env);
  return options.servers?.length ? options : { ...options, servers: undefined };
}
