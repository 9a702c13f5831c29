// What both ends of the provider API agree on beyond the proto: the API version, the message size
// and the optional trailers (partial failures, object expiry). A module of its own so a client
// (the manager) loads none of the server side (serve.ts, the health service).
import type { ProviderErrorCode } from './errors.js';
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

/** The expiry trailer's value: object id → RFC 3339 (UTC, whole seconds). */
export function encodeExpiry(expiresOn: Record<string, Date>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(expiresOn).map(([id, d]) => [id, rfc3339(d)])));
}

/**
 * Reads an expiry trailer. Entries that are not an id with an RFC 3339 time are dropped and
 * counted, never fatal: the trailer is optional information, not part of the sync.
 */
export function decodeExpiry(raw: string): { expiresOn: Record<string, Date>; dropped: number } {
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
