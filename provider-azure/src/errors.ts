// Turns Azure SDK and identity failures into ProviderErrors that say which vault, object and
// version failed and carry Entra's or Key Vault's own error code.
import { ProviderError } from '@secret-store-sync/proto';
import { ENTRA_TRY_TIMEOUT_MS, WrongTenantError } from './credentials.js';
import { redact } from './log.js';
import { AZURE, FORBIDDEN, providerError, type Failure } from './messages.js';

interface AzureLikeError {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  errorResponse?: { error?: string; errorDescription?: string };
  /** Key Vault's error body as the SDK parsed it: `{ error: { code, message, innerError: { code } } }`. */
  details?: { error?: { innerError?: { code?: string } } };
}

/** The reasons that mean "this version is disabled", whether Key Vault refused it or the provider did. */
const DISABLED_REASONS: ReadonlySet<string> = new Set(['SecretDisabled', 'KeyDisabled', 'CertificateDisabled']);

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
  return providerError(
    AZURE.at({
      where: `vault '${vault}': ${object} version '${version}'`,
      failure: AZURE.disabled({ reason: kind === 'key' ? 'KeyDisabled' : 'CertificateDisabled' }),
    }),
    { context: { vault, object, version } },
  );
}

/** Whether the failure is a disabled version (refused by Key Vault, or by the provider for keys and certificates). */
export function isDisabled(e: unknown): boolean {
  return e instanceof ProviderError && e.reason !== undefined && DISABLED_REASONS.has(e.reason);
}

type Fail = (failure: Failure) => ProviderError;

/** `what` names the object, e.g. "secret 'db-password' (version 'abc')" or "versions of key 'k'". */
export function toProviderError(err: unknown, vault: string, what: string): ProviderError {
  const where = `vault '${vault}': ${what}`;
  const context = { vault, object: what };
  // Raised below the SDK (the node's managed identity): add which vault and object it was for.
  if (err instanceof ProviderError)
    return err.context.vault === vault
      ? err
      : providerError(AZURE.alsoAt({ where, error: err }), { cause: err, context: { ...err.context, ...context } });
  const e = (err ?? {}) as AzureLikeError;
  const raw = String(e.message ?? '');
  const message = redact(String(e.message ?? err))
    .split(/\r?\n/)[0]!
    .slice(0, 600);
  const fail: Fail = (failure) => providerError(AZURE.at({ where, failure }), { cause: err, context });
  if (err instanceof WrongTenantError)
    return fail(AZURE.wrongTenant({ tenantId: err.tenantId, vault, vaultTenant: err.vaultTenant }));
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
    return fail(AZURE.entraUnavailable({ message, reason: aadsts ?? 'EntraUnavailable' }));
  }
  if (/^network_error\b/.test(raw)) {
    // MSAL's name for a token request that got no answer: refused connections, or every try past its deadline.
    return fail(AZURE.entraUnreachable({ message, seconds: ENTRA_TRY_TIMEOUT_MS / 1000 }));
  }
  // Entra refused the identity: the AADSTS code says why (federation mismatch, unknown app, …).
  if (
    aadsts ||
    e.name === 'AuthenticationError' ||
    e.name === 'AuthenticationRequiredError' ||
    e.name === 'CredentialUnavailableError'
  ) {
    return fail(AZURE.entraRefused({ message, reason: aadsts ?? e.name }));
  }
  return undefined;
}

function networkFailure(e: AzureLikeError, raw: string, fail: Fail): ProviderError | undefined {
  if (e.code === 'ENOTFOUND') {
    // How a misspelt vault name, or a vault of another cloud, fails on the real service.
    const host = /ENOTFOUND (\S+)/.exec(raw)?.[1] ?? 'the vault host';
    return fail(AZURE.vaultDoesNotResolve({ host }));
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    return fail(AZURE.vaultUnreachable({ code: e.code }));
  }
  return undefined;
}

/** A 403, told apart by Key Vault's inner error code (FORBIDDEN). */
function forbiddenFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError {
  const inner = e.details?.error?.innerError?.code;
  if (inner && Object.hasOwn(FORBIDDEN, inner)) return fail(AZURE.forbidden({ inner, message }));
  return fail(AZURE.refused({ reason: inner ?? e.code ?? 'Forbidden', message }));
}

function httpFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError | undefined {
  switch (e.statusCode) {
    case 401:
      return fail(AZURE.tokenNotAccepted({ message, reason: e.code ?? 'Unauthorized' }));
    case 403:
      return forbiddenFailure(e, message, fail);
    case 404:
      return fail(AZURE.notFound({ reason: e.code ?? 'NotFound' }));
    case 429:
      return fail(AZURE.throttled({ reason: e.code ?? 'Throttled' }));
    case 400:
      return fail(AZURE.badRequest({ reason: e.code ?? 'BadParameter', message }));
  }
  if (e.statusCode !== undefined && e.statusCode >= 500) {
    return fail(AZURE.serverError({ status: e.statusCode, reason: e.code ?? `HTTP${e.statusCode}`, message }));
  }
  return undefined;
}

function otherFailure(e: AzureLikeError, message: string, fail: Fail): ProviderError {
  if (/challenge resource/i.test(message)) {
    return fail(AZURE.challengeMismatch({ message }));
  }
  if (e.name === 'AbortError') return fail(AZURE.cancelled());
  return fail(AZURE.other({ message, reason: e.code }));
}
