// Joins a job: asks the coordinator to admit this worker, retrying until a coordinator answers,
// and fails with the coordinator's reason when it refuses (another spec, another protocol version),
// or with the NATS server's when this credential may not publish registrations (its role).
import { hostname } from 'node:os';
import {
  decodeMessage,
  encodeMessage,
  onPermissionViolation,
  permissionViolationMessage,
  registerReplySchema,
  registerRequestSchema,
  type JobSubjects,
  type Logger,
  type NatsConnection,
  type RegisterRequest,
} from '@tfjs-ddp/common';

export class RegistrationRefusedError extends Error {
  override name = 'RegistrationRefusedError';
}

export type RegistrationRequest = Omit<RegisterRequest, 'type' | 'host' | 'pid'>;

/** Registers; resolves with the coordinator's instance id and its generation when it accepted. */
export async function register(
  nc: NatsConnection,
  subjects: JobSubjects,
  request: RegistrationRequest,
  log: Logger,
  signal?: AbortSignal,
): Promise<{ instance: string; generation: number }> {
  const body = encodeMessage(registerRequestSchema, {
    type: 'register',
    host: hostname(),
    pid: process.pid,
    ...request,
  });
  const started = Date.now();
  let lastLog = 0;
  // The server's refusal arrives beside the request, which then only times out: retrying cannot help.
  let refused: string | undefined;
  const unwatch = onPermissionViolation(nc, (v) => {
    if (v.subject === subjects.register) refused = permissionViolationMessage(v);
  });
  try {
    return await requestUntilAnswered();
  } finally {
    unwatch();
  }

  async function requestUntilAnswered(): Promise<{ instance: string; generation: number }> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        const reply = await nc.request(subjects.register, body, { timeout: 2_000 });
        const r = decodeMessage(registerReplySchema, reply.data, { maxBytes: 1 << 16, job: request.job });
        if (!r.ok) throw new Error(`the coordinator's reply is invalid (${r.reason}: ${r.detail})`);
        if (!r.value.accepted)
          throw new RegistrationRefusedError(
            `the coordinator refused this worker: ${r.value.reason ?? 'no reason given'}`,
          );
        log.info('registered with the coordinator', {
          job: request.job,
          workerId: request.workerId,
          instance: r.value.instance,
        });
        return { instance: r.value.instance, generation: r.value.generation ?? 0 };
      } catch (err) {
        if (err instanceof RegistrationRefusedError) throw err;
        if (refused) throw new RegistrationRefusedError(`cannot register with the coordinator: ${refused}`);
        if (Date.now() - lastLog > 5_000) {
          lastLog = Date.now();
          log.info('waiting for the coordinator', {
            subject: subjects.register,
            waitedSec: Math.round((Date.now() - started) / 1000),
            last: (err as Error).message,
          });
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
}
