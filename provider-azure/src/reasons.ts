// Every reason the provider puts in the `x-provider-reason` trailer, with the gRPC status it comes
// with and what it means for a user: the one place to read them all. Where Entra or Key Vault
// answered with a code of its own (AADSTS700213, SecretNotFound, …) that code is the reason; the
// names below are the provider's, or stand in when Key Vault gave none. README's provider errors
// table lists the same rows (provider-azure/test/reasons.unit.test.ts checks it); the texts that
// come with them are in messages.ts.
import type { ProviderErrorCode } from '@secret-store-sync/proto';
import { ENTRA_TRY_TIMEOUT_MS, MANAGED_IDENTITY_TIMEOUT_MS } from './credentials.js';

export interface ReasonEntry {
  code: ProviderErrorCode;
  means: string;
}

export const REASONS = {
  TokenExpired: {
    code: 'Unauthenticated',
    means: 'the service-account token the caller passed for workload identity has expired',
  },
  'AADSTS<n>': {
    code: 'Unauthenticated',
    means: 'Entra ID refused the identity; the AADSTS code says why (federation mismatch, unknown app, …)',
  },
  WrongTenant: {
    code: 'Unauthenticated',
    means:
      "the SecretProviderClass's tenantID is not the vault's tenant, which Key Vault's authentication challenge names",
  },
  AuthenticationError: {
    code: 'Unauthenticated',
    means: 'the Azure SDK could not authenticate the identity and gave no AADSTS code',
  },
  AuthenticationRequiredError: {
    code: 'Unauthenticated',
    means: 'the Azure SDK needs an interactive sign-in for the identity, which a provider cannot do',
  },
  CredentialUnavailableError: {
    code: 'Unauthenticated',
    means: 'the Azure SDK had no way to get a token for the identity',
  },
  IdentityNotFound: {
    code: 'Unauthenticated',
    means:
      "the node's managed identity could not be used: no system-assigned identity, or none with the userAssignedIdentityID's client ID attached to the node",
  },
  MultipleUserAssignedIdentities: {
    code: 'Unauthenticated',
    means: 'the node has several user-assigned identities and no system-assigned one: set userAssignedIdentityID',
  },
  ManagedIdentityFailed: {
    code: 'Unauthenticated',
    means:
      "the node's identity endpoint gave no token for another reason (its own error code is the reason when it gave one)",
  },
  Unauthorized: {
    code: 'Unauthenticated',
    means: 'Key Vault did not accept the access token',
  },
  ForbiddenByRbac: {
    code: 'PermissionDenied',
    means: 'the identity has no role that allows the read',
  },
  ForbiddenByPolicy: {
    code: 'PermissionDenied',
    means: 'the vault uses access policies and none lets the identity read',
  },
  ForbiddenByConnection: {
    code: 'PermissionDenied',
    means: "the vault's public network access is disabled and the cluster has no private endpoint to it",
  },
  ForbiddenByFirewall: {
    code: 'PermissionDenied',
    means: "the vault's firewall does not allow the cluster's address",
  },
  Forbidden: {
    code: 'PermissionDenied',
    means: 'Key Vault refused the read for a reason it did not name',
  },
  NotFound: {
    code: 'NotFound',
    means: 'the object or version is not in the vault, or the object has no enabled versions',
  },
  VersionNotFound: {
    code: 'NotFound',
    means: 'objectVersionHistory starts at an objectVersion that is not an enabled version of the object',
  },
  SecretDisabled: {
    code: 'FailedPrecondition',
    means: 'the secret version is disabled in Key Vault',
  },
  KeyDisabled: {
    code: 'FailedPrecondition',
    means: 'the key version is disabled (Key Vault still returns it; the provider refuses it alike)',
  },
  CertificateDisabled: {
    code: 'FailedPrecondition',
    means: 'the certificate version is disabled (Key Vault still returns it; the provider refuses it alike)',
  },
  UnsupportedContent: {
    code: 'FailedPrecondition',
    means: 'the value cannot be converted as asked (objectEncoding, objectFormat, an unsupported key or certificate)',
  },
  ChallengeMismatch: {
    code: 'FailedPrecondition',
    means: "the vault's authentication challenge names another resource than the cloud's Key Vault",
  },
  BadParameter: {
    code: 'InvalidArgument',
    means: 'Key Vault rejected the request as malformed',
  },
  Throttled: {
    code: 'ResourceExhausted',
    means:
      'Key Vault kept answering 429 until the retry budget was spent (429s are backed off with or without Retry-After)',
  },
  TooLarge: {
    code: 'ResourceExhausted',
    means: "the Mount's files add up to more than --max-mount-bytes",
  },
  VaultUnreachable: {
    code: 'Unavailable',
    means:
      'the vault cannot be reached; a vault name that does not resolve is named as such: check keyvaultName and cloudName',
  },
  VaultTimeout: {
    code: 'Unavailable',
    means: 'Key Vault did not answer a read within --vault-request-timeout-seconds',
  },
  'HTTP<status>': {
    code: 'Unavailable',
    means: 'Key Vault answered with a server error and no error code',
  },
  AADSTS90033: {
    code: 'Unavailable',
    means:
      "Entra ID could not issue a token just now: not a refusal, nothing to fix in the federation. After such an answer the Azure SDK does not ask Entra again for the identity for 60 s, whatever its Retry-After says (MSAL's throttle reads the header under a case the SDK's network client does not give it), so Mounts for it fail at once until then",
  },
  AADSTS90024: {
    code: 'Unavailable',
    means: "as AADSTS90033 (Entra's other transient code)",
  },
  EntraUnavailable: {
    code: 'Unavailable',
    means: 'as AADSTS90033: Entra answered temporarily_unavailable or server_error, without an AADSTS code',
  },
  EntraUnreachable: {
    code: 'Unavailable',
    means: `Entra ID did not answer: each token request has ${ENTRA_TRY_TIMEOUT_MS / 1000} s, then is retried by the SDK; without that deadline one request Entra never answered held the identity's Mounts for as long as it hung`,
  },
  EntraTimeout: {
    code: 'Unavailable',
    means:
      "a read's deadline (--vault-request-timeout-seconds) passed while the identity's token request was still in flight: Entra's delay, not Key Vault's (VaultTimeout)",
  },
  ManagedIdentityTimeout: {
    code: 'Unavailable',
    means: `the node's identity endpoint (IMDS) gave no token within ${MANAGED_IDENTITY_TIMEOUT_MS / 1000} s`,
  },
  ManagedIdentityUnreachable: {
    code: 'Unavailable',
    means:
      "the node's identity endpoint (IMDS) cannot be reached: the provider is not on an Azure VM or AKS node, or IMDS is blocked",
  },
  'ManagedIdentity<status>': {
    code: 'Unavailable',
    means:
      "the node's identity endpoint answered 404, 410, 429 or 5xx, also when retried: it is being updated, busy or broken",
  },
} as const satisfies Record<string, ReasonEntry>;

export type Reason = keyof typeof REASONS;
