// Who may publish what on a job's NATS (DESIGN §5, roles): one definition of each role's subject
// permissions, rendered as a nats-server `authorization` block. The shipped configs (k8s base,
// compose) and `tfjs-ddp local --secure` all come from here, and tests compare them with it.
//
// - coordinator: everything (commands, replies to registrations, the object store's checkpoints).
// - worker: registration requests, heartbeats, reports and data-plane chunks; reads of the object
//   store (datasets). Never a command (`ddp.<job>.control`), never a reply to another's request.
// - observer: publishes nothing; may subscribe to the job's subjects to watch them.
//
// With per-worker identity each worker has its own user, whose data-plane permission names its own
// sender token (subjects.ts), so the server refuses a chunk it publishes under another member's name.
import { randomBytes } from 'node:crypto';
import { nkeys } from '@nats-io/nats-core';
import { senderToken } from '../protocol/index.js';

export type NatsRole = 'coordinator' | 'worker' | 'observer';

export interface SubjectPermissions {
  allow?: string[];
  deny?: string[];
}

export interface NatsPermissions {
  publish: SubjectPermissions;
  subscribe: SubjectPermissions;
}

/**
 * One user of the authorization block: a user name and `password` (a literal, or `$VAR` for the
 * server's environment), or an nkey (`nkey`: the public key; the client holds the seed).
 */
export interface NatsRoleUser {
  user: string;
  password?: string;
  nkey?: string;
  role: NatsRole;
  /** Per-worker identity: the only worker id whose data-plane subjects this user may publish. */
  workerId?: string;
}

/** What a worker reads from JetStream: an object store's info, its metadata and chunks (ordered consumers). */
const JETSTREAM_READ = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.*',
  '$JS.API.STREAM.NAMES',
  '$JS.API.STREAM.MSG.GET.*',
  '$JS.API.DIRECT.GET.>',
  '$JS.API.CONSUMER.CREATE.>',
  '$JS.API.CONSUMER.INFO.>',
  '$JS.API.CONSUMER.DELETE.>',
  '$JS.API.CONSUMER.MSG.NEXT.>',
  '$JS.FC.>',
  '$JS.ACK.>',
];

/** The data-plane subjects a sender token may publish ('*': any, the shared worker user). */
function dataPlane(token: string): string[] {
  return ['rs', 'ag', 'bc'].map((kind) => `ddp.*.*.${token}.${kind}.*`);
}

export function rolePermissions(role: NatsRole, workerId?: string): NatsPermissions {
  switch (role) {
    case 'coordinator':
      return { publish: { allow: ['>'] }, subscribe: { allow: ['>'] } };
    case 'worker':
      return {
        publish: {
          allow: [
            'ddp.*.register',
            'ddp.*.heartbeat',
            'ddp.*.report',
            ...dataPlane(workerId === undefined ? '*' : senderToken(workerId)),
            ...JETSTREAM_READ,
          ],
        },
        subscribe: { allow: ['ddp.>', '_INBOX.>'] },
      };
    case 'observer':
      return { publish: { deny: ['>'] }, subscribe: { allow: ['ddp.>'] } };
  }
}

const quote = (s: string) => JSON.stringify(s);
const value = (s: string) => (/^\$[A-Z_][A-Z0-9_]*$/.test(s) ? s : quote(s));

function renderSide(name: string, p: SubjectPermissions, pad: string): string[] {
  const lists = (['allow', 'deny'] as const).filter((k) => p[k]);
  const short = lists.every((k) => p[k]!.length <= 2);
  if (short) {
    const inner = lists.map((k) => `${k}: [${p[k]!.map(quote).join(', ')}]`).join(', ');
    return [`${pad}${name}: { ${inner} }`];
  }
  return [
    `${pad}${name}: {`,
    ...lists.flatMap((k) => [`${pad}  ${k}: [`, ...p[k]!.map((subject) => `${pad}    ${quote(subject)}`), `${pad}  ]`]),
    `${pad}}`,
  ];
}

/** The nats-server `authorization { users = [...] }` block giving each user its role's permissions. */
export function authorizationBlock(users: readonly NatsRoleUser[]): string {
  if (users.length === 0) throw new Error('an authorization block needs at least one user');
  const seen = new Set<string>();
  const entries = users.flatMap((u) => {
    if (seen.has(u.user)) throw new Error(`NATS user ${quote(u.user)} is listed twice; give each role its own user`);
    seen.add(u.user);
    if (u.workerId !== undefined && u.role !== 'worker')
      throw new Error(`NATS user ${quote(u.user)} names worker id ${u.workerId} but has role ${u.role}, not worker`);
    if ((u.password === undefined) === (u.nkey === undefined))
      throw new Error(`NATS user ${quote(u.user)} needs exactly one of a password and an nkey`);
    const p = rolePermissions(u.role, u.workerId);
    const credential =
      u.nkey === undefined ? `user: ${quote(u.user)}, password: ${value(u.password!)}` : `nkey: ${quote(u.nkey)}`;
    return [
      `    # ${u.role}${u.workerId === undefined ? '' : ` ${u.workerId}: its own data-plane subjects only`}`,
      '    {',
      `      ${credential}`,
      '      permissions: {',
      ...renderSide('publish', p.publish, '        '),
      ...renderSide('subscribe', p.subscribe, '        '),
      '      }',
      '    }',
    ];
  });
  return ['authorization {', '  users = [', ...entries, '  ]', '}'].join('\n');
}

/** Users with random passwords for one cluster's roles. */
export interface GeneratedRoleUsers {
  coordinator: NatsRoleUser;
  observer: NatsRoleUser;
  /** One shared worker user, or with `perWorker`, one user per worker id (named after it), in order. */
  workers: NatsRoleUser[];
  all: NatsRoleUser[];
}

/**
 * Role users with fresh random passwords. `perWorker`: the worker ids, one user each (per-worker
 * identity); omitted: one user shared by every worker.
 */
export function generateRoleUsers(perWorker?: readonly string[]): GeneratedRoleUsers {
  const password = () => randomBytes(18).toString('base64url');
  const coordinator: NatsRoleUser = { user: 'coordinator', password: password(), role: 'coordinator' };
  const observer: NatsRoleUser = { user: 'observer', password: password(), role: 'observer' };
  const workers: NatsRoleUser[] = perWorker
    ? perWorker.map((id) => ({ user: id, password: password(), role: 'worker', workerId: id }))
    : [{ user: 'worker', password: password(), role: 'worker' }];
  return { coordinator, observer, workers, all: [coordinator, ...workers, observer] };
}

/**
 * The role users of the shipped deployments (k8s base, compose): one user per role, each password
 * read by nats-server from its environment (the Kubernetes Secret, the compose file's variables).
 */
export const DEPLOYMENT_ROLE_USERS: readonly NatsRoleUser[] = [
  { user: 'coordinator', password: '$NATS_COORDINATOR_PASSWORD', role: 'coordinator' },
  { user: 'worker', password: '$NATS_WORKER_PASSWORD', role: 'worker' },
  { user: 'observer', password: '$NATS_OBSERVER_PASSWORD', role: 'observer' },
];

/** A per-worker nkey user and the seed its worker connects with (`--nats-nkey`, TFJS_DDP_NATS_NKEY_FILE). */
export interface WorkerNkey {
  workerId: string;
  user: NatsRoleUser;
  /** The nkey seed (SU...): a secret, for that worker alone. */
  seed: string;
}

/** One nkey user per worker id, each allowed the data-plane subjects of its own id only. */
export function generateWorkerNkeys(workerIds: readonly string[]): WorkerNkey[] {
  return workerIds.map((workerId) => {
    const pair = nkeys.createUser();
    return {
      workerId,
      seed: new TextDecoder().decode(pair.getSeed()),
      user: { user: workerId, nkey: pair.getPublicKey(), role: 'worker', workerId },
    };
  });
}
