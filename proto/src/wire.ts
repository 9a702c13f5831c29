// What both ends of the provider API agree on beyond the proto: the API version, the message size
// and the optional trailers (partial failures, object expiry, change keys). A module of its own so a client
// (the manager) loads none of the server side (serve.ts, the health service).
import { isProviderErrorCode, type ProviderErrorCode } from './errors.js';
import { rfc3339 } from './request.js';

export const API_VERSION = 'v1alpha1';
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface ObjectFailure {
  id: string;
  code: ProviderErrorCode;
  reason?: string;
  message: string;
}

export const PARTIAL_FAILURES_METADATA_KEY = 'x-provider-partial-failures';
export const OBJECT_EXPIRY_METADATA_KEY = 'x-provider-object-expiry';
export const CHANGE_KEYS_METADATA_KEY = 'x-provider-change-keys';
/**
 * A request header the caller sets ("1") on a Mount that must read the store now, not take what a
 * provider read for another Mount moments before: a user's forceSynchronization or edit asks
 * whether something changed, and a store may tell no one of a change (Key Vault sends no event for
 * a disabled version). A provider that shares reads honours it; others never look at it.
 */
export const FRESH_READ_METADATA_KEY = 'x-caller-fresh-read';

/**
 * The most a trailer value may hold, in bytes as sent. nghttp2 refuses a header field over 64 KiB
 * HPACK-encoded with a connection error, and Node's http2 client then stalls every call on that
 * connection until its deadline instead of failing it; HPACK never makes a value longer than it
 * is, so 32 KiB stays clear of that whatever the bytes. A manager refuses a larger trailer.
 * (grpc-js 1.14 has no `grpc.max_metadata_size` to set: the limit is nghttp2's.)
 */
export const MAX_TRAILER_BYTES = 32 * 1024;

/** A trailer a provider sent that the manager cannot take; `reason` names which fault. */
export class TrailerError extends Error {
  override readonly name = 'TrailerError';
  constructor(
    readonly key: string,
    readonly reason: 'MalformedTrailer' | 'TrailerTooLarge' | 'TrailerLost',
    message: string,
  ) {
    super(message);
  }
}

/** JSON with everything outside printable ASCII escaped: a metadata value may hold nothing else. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The partial-failures trailer's value: the first failures that fit in MAX_TRAILER_BYTES (they
 * only inform; the objects returned are the sync).
 */
export function encodeFailures(failures: ObjectFailure[]): string {
  const parts: string[] = [];
  let size = 2;
  for (const f of failures) {
    const part = asciiJson({ id: f.id, code: f.code, ...(f.reason ? { reason: f.reason } : {}), message: f.message });
    if (size + part.length + 1 > MAX_TRAILER_BYTES) break;
    parts.push(part);
    size += part.length + 1;
  }
  return `[${parts.join(',')}]`;
}

/** Reads a partial-failures trailer; anything but a list of failures is a TrailerError. */
export function decodeFailures(raw: string): ObjectFailure[] {
  checkTrailerSize(PARTIAL_FAILURES_METADATA_KEY, raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.every(
      (f: Partial<Record<keyof ObjectFailure, unknown>> | null) =>
        typeof f === 'object' &&
        f !== null &&
        typeof f.id === 'string' &&
        f.id !== '' &&
        isProviderErrorCode(f.code) &&
        typeof f.message === 'string' &&
        (f.reason === undefined || typeof f.reason === 'string'),
    );
  if (!valid)
    throw new TrailerError(
      PARTIAL_FAILURES_METADATA_KEY,
      'MalformedTrailer',
      `the provider's ${PARTIAL_FAILURES_METADATA_KEY} trailer is not a JSON list of {id, code, message}`,
    );
  return (parsed as ObjectFailure[]).map((f) => ({
    id: f.id,
    code: f.code,
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
    message: f.message,
  }));
}

export function checkTrailerSize(key: string, raw: string): void {
  if (raw.length > MAX_TRAILER_BYTES)
    throw new TrailerError(
      key,
      'TrailerTooLarge',
      `the provider's ${key} trailer holds ${raw.length} bytes, more than the ${MAX_TRAILER_BYTES} the manager accepts`,
    );
}

/** The expiry trailer's value: object id → RFC 3339 (UTC, whole seconds). */
export function encodeExpiry(expiresOn: Record<string, Date>): string {
  return asciiJson(Object.fromEntries(Object.entries(expiresOn).map(([id, d]) => [id, rfc3339(d)])));
}

/**
 * Reads an expiry trailer. Entries that are not an id with an RFC 3339 time are dropped and
 * counted, never fatal: the trailer is optional information, not part of the sync.
 */
export function decodeExpiry(raw: string): { expiresOn: Record<string, Date>; dropped: number } {
  // Too large is not an entry to drop: it is what stalls a connection (see MAX_TRAILER_BYTES).
  checkTrailerSize(OBJECT_EXPIRY_METADATA_KEY, raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { expiresOn: {}, dropped: 1 };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { expiresOn: {}, dropped: 1 };
  const expiresOn: Record<string, Date> = {};
  let dropped = 0;
  for (const [id, v] of Object.entries(parsed as Record<string, unknown>)) {
    const t = typeof v === 'string' && RFC3339.test(v) ? new Date(v) : undefined;
    if (id && t && !Number.isNaN(t.getTime())) expiresOn[id] = t;
    else dropped++;
  }
  return { expiresOn, dropped };
}
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * A change key (changes.proto): 1 to 128 printable ASCII characters, no space. Opaque to the
 * caller, which only compares it; bounded so that a provider cannot make a caller keep much.
 */
export const CHANGE_KEY = /^[\x21-\x7e]{1,128}$/;

/** The change-keys trailer's value: object version id → the key later change notices name. */
export function encodeChangeKeys(keys: Record<string, string>): string {
  return asciiJson(keys);
}

/**
 * Reads a change-keys trailer. Entries that are not an id with a valid key are dropped and
 * counted, never fatal: without a key the object is only polled, as it always was.
 */
export function decodeChangeKeys(raw: string): { keys: Record<string, string>; dropped: number } {
  checkTrailerSize(CHANGE_KEYS_METADATA_KEY, raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { keys: {}, dropped: 1 };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { keys: {}, dropped: 1 };
  const keys: Record<string, string> = {};
  let dropped = 0;
  for (const [id, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (id && typeof v === 'string' && CHANGE_KEY.test(v)) keys[id] = v;
    else dropped++;
  }
  return { keys, dropped };
}
