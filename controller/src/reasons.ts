// The status types of the Secret Store extension's troubleshooting guide, used as condition
// reasons word for word, and the error that carries one from where a failure is raised to the
// status it ends up in. The texts of the failures, and the advice that follows them, are in
// messages.ts.
import type { Failure } from './messages.js';

export const REASONS = {
  CreateSucceeded: 'The secret was created successfully.',
  CreateFailedProviderError: 'Secret creation failed due to an issue with the provider.',
  CreateFailedInvalidLabel:
    'Secret creation failed: a Secret of this name exists without the label the manager uses to manage its Secrets.',
  CreateFailedInvalidAnnotation:
    'Secret creation failed: a Secret of this name exists without the annotation the manager uses to manage its Secrets.',
  UpdateNoValueChangeSucceeded: 'The provider was checked and there were no changes to sync.',
  UpdateValueChangeOrForceUpdateSucceeded: 'The provider was checked and the Secret was updated.',
  UpdateFailedInvalidLabel: "Secret update failed: the Secret's management label was modified.",
  UpdateFailedInvalidAnnotation: "Secret update failed: the Secret's management annotation was modified.",
  UpdateFailedProviderError: 'Secret update failed due to an issue with the provider.',
  UserInputValidationFailed: 'The SecretSync is configured incorrectly.',
  ControllerSpcError: 'The SecretProviderClass could not be read or is misconfigured.',
  ControllerInternalError: 'Internal error in the manager.',
  SecretPatchFailedUnknownError: 'Writing the Secret failed.',
} as const;

export type Reason = keyof typeof REASONS;

/**
 * A failure stage; the phase (create or update) picks the exact reason for the two that differ.
 * `tokenPolicy`: the cluster's admission policy refused a token — not the SecretSync's fault, and
 * none of the guide's types is the cluster's configuration, so it is told as the manager's setup.
 */
export type FailureKind =
  'provider' | 'invalidLabel' | 'invalidAnnotation' | 'userInput' | 'spc' | 'internal' | 'tokenPolicy' | 'patch';

export function failureReason(kind: FailureKind, phase: 'create' | 'update'): Reason {
  switch (kind) {
    case 'provider':
      return phase === 'create' ? 'CreateFailedProviderError' : 'UpdateFailedProviderError';
    case 'invalidLabel':
      return phase === 'create' ? 'CreateFailedInvalidLabel' : 'UpdateFailedInvalidLabel';
    case 'invalidAnnotation':
      return phase === 'create' ? 'CreateFailedInvalidAnnotation' : 'UpdateFailedInvalidAnnotation';
    case 'userInput':
      return 'UserInputValidationFailed';
    case 'spc':
      return 'ControllerSpcError';
    case 'internal':
    case 'tokenPolicy':
      return 'ControllerInternalError';
    case 'patch':
      return 'SecretPatchFailedUnknownError';
  }
}

/**
 * How a failed sync is retried — always with exponential backoff per SecretSync (schedule.ts):
 * `backoff` from 1 s, for what may pass by itself; `slow` from 5 s, for what needs someone to
 * change something (the SecretSync, its class, a ServiceAccount, a Secret in the way), some of
 * which the manager does not watch.
 */
export type Retry = 'backoff' | 'slow';

/**
 * What failed upstream: the provider's gRPC status name and its `x-provider-reason` (e.g.
 * "PERMISSION_DENIED", "ForbiddenByRbac"), or the apiserver's HTTP status.
 */
export interface Upstream {
  code?: string | number;
  reason?: string;
}

/**
 * What a failed sync names that does not exist (yet): a SecretProviderClass not found, or a provider
 * with no socket. The manager watches for it to appear instead of waiting out the backoff.
 */
export type Missing = { kind: 'secretProviderClass'; name: string } | { kind: 'provider'; name: string };

export interface SyncErrorOptions {
  cause?: unknown;
  missing?: Missing;
  provider?: string;
  socket?: string;
  upstream?: Upstream;
  timedOut?: string;
}

export class SyncError extends Error {
  override readonly name = 'SyncError';
  /** For provider failures: which provider, and its socket, so the advice names the right one. */
  readonly provider?: string;
  readonly socket?: string;
  /** What failed upstream, for log lines and metrics, so nothing parses the message. */
  readonly upstream?: Upstream;
  /** What did not answer in time, when the failure is a deadline (e.g. "provider 'azure'"). */
  readonly timedOut?: string;
  readonly missing?: Missing;
  readonly kind: FailureKind;
  /** How the failure is retried (`Retry`): both back off, `slow` from a longer first wait. */
  readonly retry: Retry;
  /** `failure` comes from the catalog (messages.ts), with its kind and retry. */
  constructor(failure: Failure, options?: SyncErrorOptions) {
    super(failure.text, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = failure.kind;
    this.retry = failure.retry;
    this.provider = options?.provider;
    this.socket = options?.socket;
    if (options?.upstream) this.upstream = options.upstream;
    if (options?.timedOut) this.timedOut = options.timedOut;
    if (options?.missing) this.missing = options.missing;
  }
}
