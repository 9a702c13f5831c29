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

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    /** The upstream code behind it, when there is one. */
    readonly reason?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
