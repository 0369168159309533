// msgpack encoding of control messages with runtime validation. The codec owns the protocol
// version field `v`: encodeMessage adds it, decodeMessage checks it before the caller's schema
// sees the body, so schemas describe only the message itself. Decoding never throws: every
// failure comes back as a reason the receiver reports to its MessageObserver.
import type { z } from 'zod';
import { packPlain, unpackPlain } from './binary.js';
import { formatIssues } from './format-issues.js';
import type { InvalidReason } from './invalid.js';
import { PROTOCOL_VERSION } from './version.js';

// A detail names at most this many problems: it is logged for every dropped message.
const MAX_ISSUES = 5;

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: InvalidReason; detail: string };

export interface DecodeOptions {
  /** Larger messages are rejected with reason 'size' before decoding. */
  maxBytes: number;
  /** When given, the message's `job` field must equal it (reason 'job'). */
  job?: string;
}

/**
 * Validates `value` against `schema` and encodes it with the protocol version. Throws when the value
 * does not match: that is a bug in the sender, not bad input.
 */
export function encodeMessage<S extends z.ZodType>(schema: S, value: z.input<S>): Uint8Array {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new Error(
      `cannot encode a message that does not match its schema: ${formatIssues(parsed.error, '(message)', MAX_ISSUES)}`,
    );
  }
  const body = parsed.data;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Error(`control messages must be objects (they carry the field v), got ${describe(body)}`);
  }
  return packPlain({ ...(body as Record<string, unknown>), v: PROTOCOL_VERSION });
}

export function decodeMessage<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array,
  options: DecodeOptions,
): DecodeResult<z.output<S>> {
  if (!(bytes instanceof Uint8Array)) {
    return { ok: false, reason: 'decode', detail: `expected bytes, got ${describe(bytes)}` };
  }
  if (bytes.length > options.maxBytes) {
    return {
      ok: false,
      reason: 'size',
      detail: `message of ${bytes.length} bytes exceeds the limit of ${options.maxBytes} bytes`,
    };
  }
  let raw: unknown;
  try {
    raw = unpackPlain(bytes);
  } catch (err) {
    return { ok: false, reason: 'decode', detail: `not valid msgpack: ${errorMessage(err)}` };
  }
  if (!isPlainObject(raw)) {
    return { ok: false, reason: 'schema', detail: `expected a message object, got ${describe(raw)}` };
  }
  const { v, ...body } = raw;
  if (v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      reason: 'version',
      detail:
        `expected protocol version ${PROTOCOL_VERSION}, got ${v === undefined ? 'none' : describe(v)}; ` +
        `run the same tfjs-ddp version on the coordinator and every worker`,
    };
  }
  if (options.job !== undefined && body.job !== options.job) {
    return {
      ok: false,
      reason: 'job',
      detail: `expected a message of job ${JSON.stringify(options.job)}, got job ${describe(body.job)}`,
    };
  }
  let parsed: z.ZodSafeParseResult<z.output<S>>;
  try {
    parsed = schema.safeParse(body);
  } catch (err) {
    return { ok: false, reason: 'schema', detail: `schema check failed: ${errorMessage(err)}` };
  }
  if (!parsed.success) {
    return { ok: false, reason: 'schema', detail: formatIssues(parsed.error, '(message)', MAX_ISSUES) };
  }
  return { ok: true, value: parsed.data };
}

// msgpack extensions decode to Dates, Maps, Sets, Errors and byte arrays; none of them is a message.
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (ArrayBuffer.isView(v)) return 'bytes';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? v.slice(0, 80) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return `a value of type ${typeof v}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.slice(0, 200) : String(err);
}
