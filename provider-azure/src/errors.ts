// Turns Azure SDK and identity failures into ProviderErrors that say which vault, object and
// version failed and carry Entra's or Key Vault's own error code.
import { ProviderError } from '@secret-store-sync/proto';
import { redact } from './log.js';

interface AzureLikeError {
  name?: string;
  message?: string;
  statusCode?: number;
  code?: string;
  errorResponse?: { error?: string; errorDescription?: string };
}

const NETWORK_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** `what` names the object, e.g. "secret 'db-password' (version 'abc')" or "versions of key 'k'". */
export function toProviderError(err: unknown, vault: string, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as AzureLikeError;
  const message = redact(String(e.message ?? err)).split('\n')[0]!.slice(0, 600);
  const where = `vault '${vault}': ${what}`;

  // Entra refused the identity: the AADSTS code says why (federation mismatch, unknown app, …).
  const aadsts = /AADSTS\d+/.exec(String(e.message ?? ''))?.[0];
  if (aadsts || e.name === 'AuthenticationError' || e.name === 'AuthenticationRequiredError' || e.name === 'CredentialUnavailableError') {
    return new ProviderError('Unauthenticated', `${where}: Entra ID refused the identity: ${message}`, aadsts ?? e.name, { cause: err });
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    return new ProviderError('Unavailable', `${where}: the vault could not be reached (${e.code}); check keyvaultName, cloudName and the network`, 'VaultUnreachable', { cause: err });
  }
  switch (e.statusCode) {
    case 401:
      return new ProviderError('Unauthenticated', `${where}: Key Vault did not accept the access token: ${message}`, e.code ?? 'Unauthorized', { cause: err });
    case 403:
      if (/disabled/i.test(message)) return new ProviderError('FailedPrecondition', `${where}: the version is disabled in Key Vault`, 'Disabled', { cause: err });
      return new ProviderError('PermissionDenied', `${where}: the identity may not read it (assign it "Key Vault Secrets User", or "Key Vault Reader" for keys and certificates, on the vault): ${message}`, e.code ?? 'Forbidden', { cause: err });
    case 404:
      return new ProviderError('NotFound', `${where}: not found in the vault`, e.code ?? 'NotFound', { cause: err });
    case 429:
      return new ProviderError('ResourceExhausted', `${where}: Key Vault is throttling requests and the retry budget is spent; try again later`, e.code ?? 'Throttled', { cause: err });
    case 400:
      return new ProviderError('InvalidArgument', `${where}: Key Vault rejected the request: ${message}`, e.code ?? 'BadParameter', { cause: err });
  }
  if (e.statusCode !== undefined && e.statusCode >= 500) {
    return new ProviderError('Unavailable', `${where}: Key Vault answered ${e.statusCode}: ${message}`, e.code ?? `HTTP${e.statusCode}`, { cause: err });
  }
  if (/challenge resource/i.test(message)) {
    return new ProviderError('FailedPrecondition', `${where}: the vault's authentication challenge names another resource: ${message}`, 'ChallengeMismatch', { cause: err });
  }
  if (e.name === 'AbortError') return new ProviderError('DeadlineExceeded', `${where}: the request was cancelled`, undefined, { cause: err });
  return new ProviderError('Internal', `${where}: ${message}`, e.code, { cause: err });
}
