// Opens a NATS connection from NatsOptions and exposes the server limits that size every
// payload we send (max_payload is per server and must be read, never assumed).
import { readFile } from 'node:fs/promises';
import { connect as natsConnect, type NatsConnection, type ConnectionOptions } from '@nats-io/transport-node';
import { credsAuthenticator, nkeyAuthenticator } from '@nats-io/nats-core';
import { createLogger } from '../log.js';
import { formatIssues } from '../protocol/index.js';
import { natsOptionsSchema, type NatsOptions } from './options.js';
import { onPermissionViolation, permissionViolationMessage } from './permissions.js';

export type { NatsConnection } from '@nats-io/transport-node';

/**
 * `pinned`: stay on the given servers, never on one the cluster advertises. A connection of the
 * collective's data plane must reconnect to its own server or not at all (server-pool.ts).
 */
export async function connectNats(options: NatsOptions, { pinned = false } = {}): Promise<NatsConnection> {
  const parsed = natsOptionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(`invalid NATS options: ${formatIssues(parsed.error, '(options)')}`);
  const o = parsed.data;
  const opts: ConnectionOptions = {
    servers: o.servers,
    name: o.name,
    user: o.user,
    pass: o.pass,
    token: o.token,
    maxReconnectAttempts: o.maxReconnectAttempts,
    reconnectTimeWait: o.reconnectTimeWaitMs,
    timeout: o.timeoutMs,
    // Gradient traffic is bursty; the default 10 s ping is enough to notice a dead server.
    pingInterval: 10_000,
    ignoreClusterUpdates: pinned,
  };
  if (o.credsFile) opts.authenticator = credsAuthenticator(await readAuthFile(o.credsFile, 'creds'));
  else if (o.nkeyFile)
    opts.authenticator = nkeyAuthenticator(
      (await readAuthFile(o.nkeyFile, 'nkey seed')).slice().filter((b) => b !== 10 && b !== 13),
    );
  if (o.tls) opts.tls = { caFile: o.tls.caFile, certFile: o.tls.certFile, keyFile: o.tls.keyFile };
  let nc: NatsConnection;
  try {
    nc = await natsConnect(opts);
  } catch (err) {
    const where = o.servers.join(', ');
    // The client's own word for it is just "timeout": say what did (not) happen.
    const what =
      (err as Error).message === 'timeout'
        ? `no NATS server answered at ${where} within ${o.timeoutMs} ms (nothing accepted the connection, or ` +
          `something did but never sent the NATS greeting: is that the client port of a nats-server?)`
        : `cannot connect to NATS at ${where}: ${(err as Error).message}`;
    throw new Error(
      `${what}. Check that nats-server is running there (or pass --nats URL / set TFJS_DDP_NATS_URL) and that the credentials are right.`,
      { cause: err },
    );
  }
  // The publish itself looks sent: the server's refusal only comes back as a status event.
  const log = createLogger('nats');
  onPermissionViolation(nc, (v) => log.error(permissionViolationMessage(v, o.user)));
  return nc;
}

async function readAuthFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new Error(`cannot read the NATS ${what} file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The largest message body the connected server accepts, in bytes. */
export function maxPayload(nc: NatsConnection): number {
  const info = nc.info;
  if (!info) throw new Error('the NATS connection has no server info yet; connect first');
  return info.max_payload;
}
