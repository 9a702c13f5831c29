// Provider errors carry a gRPC status code (what kind of failure) and, where known, the upstream
// error code that caused it (an AADSTS number, a Key Vault error code), so callers can report both.
import { Metadata, status } from '@grpc/grpc-js';

export type ProviderErrorCode =
  | 'InvalidArgument'
  | 'Unauthenticated'
  | 'PermissionDenied'
  | 'NotFound'
  | 'ResourceExhausted'
  | 'Unavailable'
  | 'DeadlineExceeded'
  | 'FailedPrecondition'
  | 'Internal';

/** Trailing metadata key holding the upstream error code (e.g. "AADSTS700213", "SecretNotFound"). */
export const REASON_METADATA_KEY = 'x-provider-reason';

/**
 * Where a failure happened and what ran out of time, as fields: the message says the same for a
 * user, these are for code (is this error already about this vault?) and for log lines.
 */
export interface ErrorContext {
  /** The store the failure is about (for Azure, the Key Vault's name). */
  vault?: string;
  /** The object as the message names it, e.g. "secret 'db-password'" or "versions of key 'k'". */
  object?: string;
  /** The object version asked for, when one was. */
  version?: string;
  /** What did not answer in time, when the failure is a deadline (e.g. "Key Vault", "Entra ID"). */
  timedOut?: string;
}

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  /** Where it happened; empty when the raiser did not know (see withContext). */
  readonly context: Readonly<ErrorContext>;
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    /** The upstream code behind it, when there is one. */
    readonly reason?: string,
    options?: { cause?: unknown; context?: ErrorContext },
  ) {
    super(message, options && 'cause' in options ? { cause: options.cause } : undefined);
    this.context = { ...options?.context };
  }

  get grpcCode(): status {
    return status[GRPC_NAMES[this.code]];
  }

  toServiceError(): { code: status; details: string; metadata: Metadata } {
    const metadata = new Metadata();
    if (this.reason) metadata.set(REASON_METADATA_KEY, this.reason);
    return { code: this.grpcCode, details: this.message, metadata };
  }
}

const GRPC_NAMES: Record<ProviderErrorCode, keyof typeof status> = {
  InvalidArgument: 'INVALID_ARGUMENT',
  Unauthenticated: 'UNAUTHENTICATED',
  PermissionDenied: 'PERMISSION_DENIED',
  NotFound: 'NOT_FOUND',
  ResourceExhausted: 'RESOURCE_EXHAUSTED',
  Unavailable: 'UNAVAILABLE',
  DeadlineExceeded: 'DEADLINE_EXCEEDED',
  FailedPrecondition: 'FAILED_PRECONDITION',
  Internal: 'INTERNAL',
};

export function isProviderErrorCode(v: unknown): v is ProviderErrorCode {
  return typeof v === 'string' && Object.hasOwn(GRPC_NAMES, v);
}

/** The name of a gRPC status code, e.g. 5 → "NOT_FOUND". */
export function statusName(code: number): string {
  return (Object.entries(status).find(([, v]) => v === code)?.[0] as string | undefined) ?? String(code);
}

/**
 * Narrowing a caught `unknown` (Backstage's isError/assertError; here only what the log lines and
 * messages need). The message of an Error or of an error-like object, else the value as text.
 */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && 'message' in e && e.message != null) return String(e.message);
  return String(e);
}

/**
 * The `code` an error carries: an HTTP status from the Kubernetes client (404, 409), a gRPC status
 * number, or a Node system error's name ('ENOENT').
 */
export function errorCode(e: unknown): string | number | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  return typeof e.code === 'string' || typeof e.code === 'number' ? e.code : undefined;
}

/** The stack for a log line, or the value as text when there is none. */
export function errorStack(e: unknown): string {
  return (e instanceof Error && e.stack) || String(e);
}
