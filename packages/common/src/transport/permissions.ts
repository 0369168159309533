// A publish or subscription the NATS server refuses for the credential's permissions (nats-roles.ts)
// arrives asynchronously, as a status event of the connection, and the publish itself returns as
// if it had gone out. This turns those events into listeners' calls and into an error message that
// says which subject was refused and what to do, instead of a silent drop and a later timeout.
import { errors, type NatsConnection } from '@nats-io/nats-core';

export interface PermissionViolation {
  operation: 'publish' | 'subscription';
  subject: string;
}

type Listener = (v: PermissionViolation) => void;

const listeners = new WeakMap<NatsConnection, Set<Listener>>();

/** Calls `listener` for every permission violation the server reports on `nc`; returns the unsubscribe. */
export function onPermissionViolation(nc: NatsConnection, listener: Listener): () => void {
  let set = listeners.get(nc);
  if (!set) {
    const watched = new Set<Listener>();
    set = watched;
    listeners.set(nc, watched);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type !== 'error' || !(s.error instanceof errors.PermissionViolationError)) continue;
        const v: PermissionViolation = { operation: s.error.operation, subject: s.error.subject };
        for (const l of [...watched]) l(v);
      }
    })().catch(() => {});
  }
  const own = set;
  own.add(listener);
  return () => own.delete(listener);
}

/** What a refused operation means and what to do about it; `user`: the connection's NATS user, if any. */
export function permissionViolationMessage(v: PermissionViolation, user?: string): string {
  const who = user === undefined ? 'this client' : `this client (NATS user ${JSON.stringify(user)})`;
  const what = v.operation === 'publish' ? 'publish to' : 'subscribe to';
  return (
    `the NATS server refused to let ${who} ${what} ${v.subject}: its credential's permissions do not allow it. ` +
    'Run each process with the credential of its role (coordinator, worker or observer; see the README, Security), ' +
    'and with per-worker NATS users give each worker the worker id its user is named after'
  );
}
