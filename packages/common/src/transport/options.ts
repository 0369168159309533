// NATS connection settings as one validated type, with the environment variables that
// Kubernetes manifests and the CLI use to fill it.
import { z } from 'zod';

export const natsOptionsSchema = z
  .object({
    /** Server URLs, e.g. nats://nats:4222. */
    servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']),
    user: z.string().optional(),
    pass: z.string().optional(),
    token: z.string().optional(),
    /** Path to a file holding an nkey seed (SU...). */
    nkeyFile: z.string().optional(),
    /** Path to a .creds file (JWT + nkey seed). */
    credsFile: z.string().optional(),
    tls: z
      .object({
        caFile: z.string().optional(),
        certFile: z.string().optional(),
        keyFile: z.string().optional(),
      })
      .optional(),
    /** Client name shown by the server's monitoring endpoints. */
    name: z.string().optional(),
    /** Reconnect policy: -1 retries forever. */
    maxReconnectAttempts: z.number().int().min(-1).default(-1),
    reconnectTimeWaitMs: z.number().int().min(0).default(500),
    /** How long the first connection may take before failing. */
    timeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();

export type NatsOptions = z.input<typeof natsOptionsSchema>;

/** The environment variables read by {@link natsOptionsFromEnv}, documented in the README. */
export const NATS_ENV = {
  servers: 'TFJS_DDP_NATS_URL',
  user: 'TFJS_DDP_NATS_USER',
  pass: 'TFJS_DDP_NATS_PASSWORD',
  token: 'TFJS_DDP_NATS_TOKEN',
  nkeyFile: 'TFJS_DDP_NATS_NKEY_FILE',
  credsFile: 'TFJS_DDP_NATS_CREDS_FILE',
  caFile: 'TFJS_DDP_NATS_TLS_CA',
  certFile: 'TFJS_DDP_NATS_TLS_CERT',
  keyFile: 'TFJS_DDP_NATS_TLS_KEY',
} as const;

export function natsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): NatsOptions {
  const tls =
    env[NATS_ENV.caFile] || env[NATS_ENV.certFile] || env[NATS_ENV.keyFile]
      ? { caFile: env[NATS_ENV.caFile], certFile: env[NATS_ENV.certFile], keyFile: env[NATS_ENV.keyFile] }
      : undefined;
  return {
    servers: env[NATS_ENV.servers]
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    user: env[NATS_ENV.user],
    pass: env[NATS_ENV.pass],
    token: env[NATS_ENV.token],
    nkeyFile: env[NATS_ENV.nkeyFile],
    credsFile: env[NATS_ENV.credsFile],
    tls,
  };
}

/**
 * The inverse of {@link natsOptionsFromEnv}: the variables that give a child process these options,
 * only those with a value. A process hands credentials on this way so they never show in `ps`.
 */
export function natsOptionsToEnv(o: NatsOptions | undefined): Record<string, string> {
  const values: Record<keyof typeof NATS_ENV, string | undefined> = {
    servers: o?.servers?.join(','),
    user: o?.user,
    pass: o?.pass,
    token: o?.token,
    nkeyFile: o?.nkeyFile,
    credsFile: o?.credsFile,
    caFile: o?.tls?.caFile,
    certFile: o?.tls?.certFile,
    keyFile: o?.tls?.keyFile,
  };
  return Object.fromEntries(
    Object.entries(values)
      .filter((e): e is [keyof typeof NATS_ENV, string] => e[1] !== undefined)
      .map(([key, value]) => [NATS_ENV[key], value]),
  );
}
