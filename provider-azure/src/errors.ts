// Turns Azure SDK and identity failures into ProviderErrors that say which vault, object and
// version failed and carry Entra's or Key Vault's own error code.
import { ProviderError, type ProviderErrorCode } from '@secret-store-sync/proto';
import { ENTRA_TRY_TIMEOUT_MS, WrongTenantError } from './credentials.js';
import { redact } from './log.js';

interface AzureLikeError {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  errorResponse?: { error?: string; errorDescription?: string };
  /** Key Vault's error body as the SDK parsed it: `{ error: { code, message, innerError: { code } } }`. */
  details?: { error?: { innerError?: { code?: string } } };
}

/**
 * What a 403 means, by Key Vault's inner error code — its messages are for people and change, and
 * "disabled" appears in the network-rule message too ("Public network access is disabled…").
 * Codes and messages from real responses: SecretDisabled (Azure/azure-sdk-for-js#24756),
 * ForbiddenByRbac (the RBAC denial naming the action), ForbiddenByConnection
 * (microsoft/multimodal-ai#171), ForbiddenByFirewall (microsoft/AzureTRE#3789), ForbiddenByPolicy
 * (vaults using access policies).
 */
const DISABLED = {
  code: 'FailedPrecondition',
  says: 'the version is disabled in Key Vault; enable it or point objectVersion at an enabled one',
} as const;
/** The reasons that mean "this version is disabled", whether Key Vault refused it or the provider did. */
const DISABLED_REASONS: ReadonlySet<string> = new Set(['SecretDisabled', 'KeyDisabled', 'CertificateDisabled']);
const FORBIDDEN: Record<string, { code: 'FailedPrecondition' | 'PermissionDenied'; says: string }> = {
  SecretDisabled: DISABLED,
  KeyDisabled: DISABLED,
  CertificateDisabled: DISABLED,
  ForbiddenByRbac: {
    code: 'PermissionDenied',
    says: 'the identity has no role that allows this read (assign it "Key Vault Secrets User", or "Key Vault Reader" for keys and certificates, on the vault; new assignments can take minutes to apply)',
  },
  ForbiddenByPolicy: {
    code: 'PermissionDenied',
    says: 'the vault uses access policies and none lets this identity read it (add an access policy with get permission, or switch the vault to Azure RBAC)',
  },
  ForbiddenByConnection: {
    code: 'PermissionDenied',
    says: "the vault's public network access is disabled and this cluster does not reach it through a private endpoint (add a private endpoint in the cluster's network, or allow the cluster's network)",
  },
  ForbiddenByFirewall: {
    code: 'PermissionDenied',
    says: "the vault's firewall does not allow this cluster's address (add the cluster's outbound IP or subnet to the vault's network rules)",
  },
};

/**
 * Entra failing rather than refusing. Entra's error reference (learn.microsoft.com/entra/identity-platform/
 * reference-error-codes) gives the OAuth error temporarily_unavailable ("The server is temporarily
 * too busy to handle the request. Retry the request.") and the transient AADSTS codes below
 * (90033 MsodsServiceUnavailable; 90024 RequestBudgetExceededError, "A transient error has
 * occurred"). The codes matter most: MSAL remembers a 429 or 5xx answer for the identity and replays
 * it for 60 s without asking Entra (@azure/msal-common ThrottlingUtils, DEFAULT_THROTTLE_TIME_SECONDS),
 * keeping only the codes and the description. It would honour a Retry-After, but reads the header as
 * "Retry-After" from @azure/identity's network client, which hands it over lower-cased
 * (core-rest-pipeline HttpHeaders.toJSON()), so it is 60 s whatever Entra says.
 */
const ENTRA_TRANSIENT = new Set(['AADSTS90033', 'AADSTS90024']);

const NETWORK_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A key or certificate version marked disabled. Key Vault still returns these (with
 * `enabled: false`; notaryproject/ratify#1474, #1874 check the flag themselves) while it refuses a
 * disabled secret with 403 SecretDisabled: both are the same failure to a user.
 */
export function disabledVersion(
  vault: string,
  kind: 'key' | 'certificate',
  name: string,
  version: string,
): ProviderError {
  const object = `${kind} '${name}'`;
  return new ProviderError(
    DISABLED.code,
    `vault '${vault}': ${object} version '${version}': ${DISABLED.says}`,
    kind === 'key' ? 'KeyDisabled' : 'CertificateDisabled',
    { context: { vault, object, version } },
  );
}

/** Whether the failure is a disabled version (refused by Key Vault, or by the provider for keys and certificates). */
export function isDisabled(e: unknown): boolean {
  return e instanceof ProviderError && e.reason !== undefined && DISABLED_REASONS.has(e.reason);
}

type Fail = (code: ProviderErrorCode, text: string, reason?: string) => ProviderError;

/** `what` names the object, e.g. "secret 'db-password' (version 'abc')" or "versions of key 'k'". */
export function toProviderError(err: unknown, vault: string, what: string): ProviderError {
  const where = `vault '${vault}': ${what}`;
  const context = { vault, object: what };
  // Raised below the SDK (the node's managed identity): add which vault and object it was for.
  if (err instanceof ProviderError)
    return err.context.vault === vault
      ? err
      : new ProviderError(err.code, `${where}: ${err.message}`, err.reason, {
          cause: err,
          context: { ...err.context, ...context },
        });
  const e = (err ?? {}) as AzureLikeError;
  const raw = String(e.message ?? '');
  const message = redact(String(e.message ?? err))
    .split(/\r?\n/)[0]!
    .slice(0, 600);
  const fail: Fail = (code, text, reason) =>
    new ProviderError(code, `${where}: ${text}`, reason, { cause: err, context });
  if (err instanceof WrongTenantError)
    return fail(
      'Unauthenticated',
      `tenantID '${err.tenantId}' is not the tenant of vault '${vault}' (${err.vaultTenant}, as its authentication challenge says): set tenantID to the vault's tenant, or check keyvaultName`,
      'WrongTenant',
    );
  return (
    entraFailure(e, raw, message, fail) ??
    networkFailure(e, raw, fail) ??
    httpFailure(e, message, fail) ??
    otherFailure(e, message, fail)
  );
}

function entraFailure(e: AzureLikeError, raw: string, message: string, fail: Fail): ProviderError | undefined {
  const aadsts = /AADSTS\d+/.exec(raw)?.[0];
  if ((aadsts && ENTRA_TRANSIENT.has(aadsts)) || /^(temporarily_unavailable|server_error)\b/.test(raw)) {
    // Told as a refusal, a user would go and check a federation that is fine.
    return fail(
      'Unavailable',
      `Entra ID could not issue a token just now, which is not a refusal of the identity (${message}); the Azure SDK does not ask Entra again for this identity until 60 s after such an answer`,
      aadsts ?? 'EntraUnavailable',
    );
  }
  if (/^network_error\b/.test(raw)) {
    // MSAL's name for a token request that got no answer: refused connections, or every try past its deadline.
    return fail(
      'Unavailable',
      `Entra ID could not be reached, or did not answer a token request within ${ENTRA_TRY_TIMEOUT_MS / 1000} s, also when retried (${message})`,
      'EntraUnreachable',
    );
  }
  // Entra refused the identity: the AADSTS code says why (federation mismatch, unknown app, …).
  if (
    aadsts ||
    e.name === 'AuthenticationError' ||
    e.name === 'AuthenticationRequiredError' ||
    e.name === 'CredentialUnavailableError'
  ) {
    return fail('Unauthenticated', `Entra ID refused the identity: ${message}`, aadsts ?? e.name);
  }
  return undefined;
}

function networkFailure(e: AzureLikeError, raw: string, fail: Fail): ProviderError | undefined {
  if (e.code === 'ENOTFOUND') {
    // How a misspelt vault name, or a vault of another cloud, fails on the real service.
    const host = /ENOTFOUND (\S+)/.exec(raw)?.[1] ?? 'the vault host';
    return fail(
      'Unavailable',
      `${host} does not resolve (ENOTFOUND): there is no such vault in this cloud, or DNS is failing; check keyvaultName and cloudName`,
      'VaultUnreachable',
    );
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    return fail(
      'Unavailable',
      `the vault could not be reached (${e.code}); check keyvaultName, cloudName and the network`,
      'VaultUnreachable',
    );
  }
  return undefined;
}

/** A 403, told apart by Key Vault's inner error code (FORBIDDEN). */
function forbiddenFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError {
  const inner = e.details?.error?.innerError?.code;
  const known = inner ? FORBIDDEN[inner] : undefined;
  if (known) return fail(known.code, `${known.says}: ${message}`, inner);
  return fail(
    'PermissionDenied',
    `Key Vault refused the read (${inner ?? e.code ?? 'Forbidden'}): ${message}`,
    inner ?? e.code ?? 'Forbidden',
  );
}

function httpFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError | undefined {
  switch (e.statusCode) {
    case 401:
      return fail('Unauthenticated', `Key Vault did not accept the access token: ${message}`, e.code ?? 'Unauthorized');
    case 403:
      return forbiddenFailure(e, message, fail);
    case 404:
      return fail('NotFound', 'not found in the vault', e.code ?? 'NotFound');
    case 429:
      return fail(
        'ResourceExhausted',
        'Key Vault is throttling requests and the retry budget is spent; try again later',
        e.code ?? 'Throttled',
      );
    case 400:
      return fail('InvalidArgument', `Key Vault rejected the request: ${message}`, e.code ?? 'BadParameter');
  }
  if (e.statusCode !== undefined && e.statusCode >= 500) {
    return fail('Unavailable', `Key Vault answered ${e.statusCode}: ${message}`, e.code ?? `HTTP${e.statusCode}`);
  }
  return undefined;
}

function otherFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError {
  if (/challenge resource/i.test(message)) {
    return fail(
      'FailedPrecondition',
      `the vault's authentication challenge names another resource: ${message}`,
      'ChallengeMismatch',
    );
  }
  if (e.name === 'AbortError') return fail('DeadlineExceeded', 'the request was cancelled');
  return fail('Internal', message, e.code);
}
