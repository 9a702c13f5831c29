// The status types of the Secret Store extension's troubleshooting guide, used as condition
// reasons word for word, and the error that carries one from where a failure is raised to the
// status it ends up in.
export const REASONS = {
  CreateSucceeded: 'The secret was created successfully.',
  CreateFailedProviderError: 'Secret creation failed due to an issue with the provider.',
  CreateFailedInvalidLabel: 'Secret creation failed: a Secret of this name exists without the label the manager uses to manage its Secrets.',
  CreateFailedInvalidAnnotation: 'Secret creation failed: a Secret of this name exists without the annotation the manager uses to manage its Secrets.',
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

/** A failure stage; the phase (create or update) picks the exact reason for the two that differ. */
export type FailureKind = 'provider' | 'invalidLabel' | 'invalidAnnotation' | 'userInput' | 'spc' | 'internal' | 'patch';

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
      return 'ControllerInternalError';
    case 'patch':
      return 'SecretPatchFailedUnknownError';
  }
}

/** What to do about it, appended to messages so `kubectl describe` tells the user the next step. */
export const ADVICE: Record<FailureKind, string> = {
  provider: 'Check the provider logs (container provider-azure-installer), the identity\'s role assignments and the SecretProviderClass.',
  invalidLabel: 'The Secret is not managed by this SecretSync; delete it (kubectl delete secret) to let the manager create it.',
  invalidAnnotation: 'The Secret is not managed by this SecretSync; delete it (kubectl delete secret) to let the manager create it.',
  userInput: 'Correct the SecretSync and apply it again.',
  spc: 'Correct the SecretProviderClass and apply it again.',
  internal: 'Check the manager logs (container manager) and events.',
  patch: 'Check the events and the message above; if the Secret was changed by someone else, delete it and let the manager recreate it.',
};

export class SyncError extends Error {
  override readonly name = 'SyncError';
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** Retry soon (transient) or only on the next change or rotation. */
    readonly retry: 'backoff' | 'slow' = 'backoff',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
