// Azure credentials per identity, reused across Mounts so Entra tokens are cached — but keyed so
// that a token obtained for one workload is never used for another: a workload-identity credential
// is keyed by the service account (issuer + subject) that presented the assertion, not just by
// client id, because Entra decides per federated subject.
import {
  ClientAssertionCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type AccessToken,
  type GetTokenOptions,
  type TokenCredential,
  type TokenCredentialOptions,
} from '@azure/identity';
import type { ProviderError } from '@secret-store-sync/proto';
import { createHash } from 'node:crypto';
import { KNOWN_AUTHORITY_HOSTS, type CloudEnvironment } from './cloud.js';
import { redact } from './log.js';
import { MANAGED_IDENTITY, providerError } from './messages.js';
import type { Identity } from './params.js';

interface Entry {
  credential: TokenCredential;
  /** The newest service-account token seen for this key; the assertion callback reads it. */
  assertion?: string;
}

/**
 * At most `maxEntries` identities, least recently used dropped first (a tenant can mint new
 * identities by changing clientID). A dropped identity's credential is never used again: the
 * next Mount with it makes a new one, and the Key Vault clients follow the credential they are
 * given (see KeyVaultAccess.session), so no client keeps a credential whose assertion is frozen.
 */
export class Credentials {
  private readonly entries = new Map<string, Entry>(); // insertion order = least recently used first

  constructor(private readonly maxEntries = 5_000) {}

  /** Returns the credential and a key that identifies the caller's identity (for caches). */
  get(identity: Identity, tenantId: string, cloud: CloudEnvironment): { credential: TokenCredential; key: string } {
    const key = identityKey(identity, tenantId, cloud);
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      const created: Entry = { credential: this.create(identity, tenantId, cloud, () => created.assertion ?? '') };
      entry = created;
      // Make room before adding, so the newcomer is never the one dropped.
      for (const k of this.entries.keys()) {
        if (this.entries.size < this.maxEntries) break;
        this.entries.delete(k);
      }
    }
    this.entries.set(key, entry);
    if (identity.mode === 'workloadIdentity') entry.assertion = identity.token;
    return { credential: entry.credential, key };
  }

  get size(): number {
    return this.entries.size;
  }

  private create(
    identity: Identity,
    tenantId: string,
    cloud: CloudEnvironment,
    assertion: () => string,
  ): TokenCredential {
    switch (identity.mode) {
      case 'workloadIdentity':
        return workloadIdentityCredential({
          tenantId,
          clientId: identity.clientId,
          cloud,
          assertion: async () => assertion(),
        });
      case 'servicePrincipal':
        return new TenantBound(
          new ClientSecretCredential(tenantId, identity.clientId, identity.clientSecret, entraOptions(cloud)),
          tenantId,
        );
      case 'managedIdentity':
        return nodeManagedIdentityCredential(identity.clientId);
    }
  }
}

function entraOptions(cloud: CloudEnvironment) {
  return {
    authorityHost: cloud.authorityHost,
    // Instance discovery asks login.microsoftonline.com about the authority; for any other host
    // (sovereign stacks, test stand-ins) it would fail, and skipping it is harmless.
    disableInstanceDiscovery: !KNOWN_AUTHORITY_HOSTS.has(cloud.authorityHost),
    additionalPolicies: [{ policy: ENTRA_TRY_DEADLINE, position: 'perRetry' as const }],
  };
}

/**
 * Workload identity: a service-account token (`assertion`) exchanged at Entra ID, with the deadline
 * on each token request below and tokens of its own tenant only. Used for each workload's identity
 * (Credentials) and for the provider's own (the change queue's reader).
 */
export function workloadIdentityCredential(o: {
  tenantId: string;
  clientId: string;
  cloud: CloudEnvironment;
  assertion: () => Promise<string>;
}): TokenCredential {
  return new TenantBound(
    new ClientAssertionCredential(o.tenantId, o.clientId, o.assertion, entraOptions(o.cloud)),
    o.tenantId,
  );
}

/** The node's managed identity (`clientId` undefined: its default one), held to the bounds below. */
export function nodeManagedIdentityCredential(clientId: string | undefined): TokenCredential {
  return new NodeManagedIdentity(clientId);
}

/**
 * The vault is in another tenant than the SecretProviderClass's tenantID: Key Vault's 401 challenge
 * names the vault's tenant (`authorization="https://login.microsoftonline.com/<tenant>"`), and the
 * Key Vault SDK asks the credential for a token of that tenant (@azure/keyvault-common
 * keyVaultAuthenticationPolicy, getToken's `tenantId`). @azure/identity refuses it with a text
 * about a credential option (additionallyAllowedTenants) that a SecretProviderClass cannot set;
 * this says which two tenants differ, as data (errors.ts words it), before Entra is asked.
 */
export class WrongTenantError extends Error {
  override readonly name = 'WrongTenantError';
  constructor(
    /** The SecretProviderClass's tenantID. */
    readonly tenantId: string,
    /** The tenant the vault's challenge named. */
    readonly vaultTenant: string,
  ) {
    super('the vault is in another tenant');
  }
}

/** Tokens of its own tenant only: a request for another (the vault's, from its challenge) is a WrongTenantError. */
class TenantBound implements TokenCredential {
  constructor(
    private readonly inner: TokenCredential,
    private readonly tenantId: string,
  ) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    const asked = options?.tenantId;
    // `adfs` (Azure Stack Hub) is its own one tenant; @azure/identity asks for no other there either.
    if (asked && asked !== this.tenantId && this.tenantId !== 'adfs') throw new WrongTenantError(this.tenantId, asked);
    return this.inner.getToken(scopes, options);
  }
}

/**
 * A deadline on each token request to Entra. The SDK sets none and takes no cancellation (the
 * abortSignal a Key Vault read passes to getToken does not reach MSAL's request), and the Key Vault
 * client makes every read wait on the one token refresh in flight: one request Entra never
 * answered held the identity's Mounts for as long as it hung — for ever, behind a silent
 * connection. A try past the deadline is aborted and fails as a RestError ETIMEDOUT, which the
 * SDK's retry policy retries like a dropped connection (exponentialRetryStrategy's system errors);
 * an abort it would not.
 */
export const ENTRA_TRY_TIMEOUT_MS = 10_000;
type PipelinePolicy = NonNullable<TokenCredentialOptions['additionalPolicies']>[number]['policy'];
const ENTRA_TRY_DEADLINE: PipelinePolicy = {
  name: 'entraTryDeadline',
  async sendRequest(request, next) {
    const caller = request.abortSignal;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    caller?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(), ENTRA_TRY_TIMEOUT_MS);
    request.abortSignal = controller.signal;
    try {
      return await next(request);
    } catch (e) {
      if (!controller.signal.aborted || caller?.aborted) throw e;
      // A RestError (the retry policy rethrows anything else at once; isRestError goes by the name),
      // without the request: its body holds the client assertion, a service-account token.
      throw Object.assign(new Error(`Entra ID did not answer within ${ENTRA_TRY_TIMEOUT_MS / 1000} s`), {
        name: 'RestError',
        code: 'ETIMEDOUT',
      });
    } finally {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
      request.abortSignal = caller;
    }
  },
};

/**
 * Bounds on a token from the node's managed identity. Unbounded, the SDK outlasts every Mount:
 * it retries IMDS's 404 and 410 five times from 0.8 s — 410 from 3 s, "at least 70 seconds"
 * (@azure/identity imdsRetryPolicy) — its other failures three times, and waits on a silent
 * endpoint with no timeout, while the manager gives a Mount 30 s and a Key Vault read has 20 s.
 * With two retries a 410 is given up after at most 9 s; the overall bound stays below the read's
 * deadline, so a slow identity endpoint is reported as such and not as Key Vault not answering.
 */
export const MANAGED_IDENTITY_RETRIES = 2;
export const MANAGED_IDENTITY_TIMEOUT_MS = 12_000;

/**
 * The node's managed identity (useVMManagedIdentity), through the SDK's ManagedIdentityCredential
 * (IMDS on an AKS node; App Service's endpoint where IDENTITY_ENDPOINT is set), held to the bounds
 * above and with its failures turned into ProviderErrors that say what to change: the SDK reports
 * every one as "ManagedIdentityCredential: Authentication failed. Message invalid_request: Error(s):
 * Not Available - … - Description: <what IMDS said> - …", and the description alone
 * ("Multiple user assigned identities exist, …") does not name the parameter to set.
 */
class NodeManagedIdentity implements TokenCredential {
  private readonly sdk: ManagedIdentityCredential;
  /** Where tokens come from, for messages (MSAL reads the same variables). */
  private readonly endpoint = process.env.IDENTITY_ENDPOINT
    ? "the node's identity endpoint (IDENTITY_ENDPOINT)"
    : `IMDS (${process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST || 'http://169.254.169.254'})`;

  constructor(private readonly clientId: string | undefined) {
    this.sdk = new ManagedIdentityCredential({
      ...(clientId ? { clientId } : {}),
      retryOptions: { maxRetries: MANAGED_IDENTITY_RETRIES },
    });
  }

  async getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken | null> {
    const caller = options.abortSignal;
    const cancelled = () => Object.assign(new Error('the token request was cancelled'), { name: 'AbortError' });
    if (caller?.aborted) throw cancelled();
    let timer: NodeJS.Timeout | undefined;
    let onAbort = () => {};
    // The SDK takes no abort signal here (MSAL's request goes on); the caller stops waiting for it.
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            providerError(
              MANAGED_IDENTITY.timeout({ endpoint: this.endpoint, seconds: MANAGED_IDENTITY_TIMEOUT_MS / 1000 }),
              { context: { timedOut: this.endpoint } },
            ),
          ),
        MANAGED_IDENTITY_TIMEOUT_MS,
      );
      onAbort = () => reject(cancelled());
      caller?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([
        this.sdk.getToken(scopes, options).catch((e: unknown) => {
          throw this.failure(e);
        }),
        bound,
      ]);
    } finally {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    }
  }

  /** What the SDK's failure means for the user. IMDS's answers are in entra.ts (the stand-in), with their sources. */
  private failure(err: unknown): ProviderError {
    const f = imdsFailure(err);
    const opts = { cause: err };
    return this.identityChoiceFailure(f.said, opts) ?? this.serviceFailure(f, opts);
  }

  /** The node has no identity that fits the class's choice (or several, and it made none). */
  private identityChoiceFailure(said: string, opts: { cause: unknown }): ProviderError | undefined {
    const told = { endpoint: this.endpoint, said };
    if (/^Multiple user assigned identities exist/i.test(said))
      return providerError(MANAGED_IDENTITY.several(told), opts);
    if (!/^Identity not found/i.test(said)) return undefined;
    return providerError(
      this.clientId
        ? MANAGED_IDENTITY.notAttached({ ...told, clientId: this.clientId })
        : MANAGED_IDENTITY.noSystemAssigned(told),
      opts,
    );
  }

  /** IMDS out of reach, failing, or refusing a token for an identity the node has. */
  private serviceFailure(
    { said, status, errorCode, unreachable }: ImdsFailure,
    opts: { cause: unknown },
  ): ProviderError {
    const told = { endpoint: this.endpoint, said, what: MANAGED_IDENTITY.which({ clientId: this.clientId }) };
    if (unreachable) return providerError(MANAGED_IDENTITY.unreachable(told), opts);
    if (status !== undefined && (status >= 500 || status === 404 || status === 410 || status === 429)) {
      // Still failing after the SDK's retries: IMDS is being updated (404, 410), busy or broken.
      return providerError(MANAGED_IDENTITY.answered({ ...told, status }), opts);
    }
    const reason = /AADSTS\d+/.exec(said)?.[0] ?? (errorCode || 'ManagedIdentityFailed');
    return providerError(MANAGED_IDENTITY.failed({ ...told, reason, ...(status ? { status } : {}) }), opts);
  }
}

/** What a managed identity failure from the SDK says: IMDS's description (redacted, one line), status and code. */
interface ImdsFailure {
  said: string;
  status: number | undefined;
  errorCode: string | undefined;
  /** IMDS was not reached at all. */
  unreachable: boolean;
}

function imdsFailure(err: unknown): ImdsFailure {
  const e = (err ?? {}) as {
    message?: string;
    cause?: { errorCode?: string; errorMessage?: string; status?: number };
  };
  const upstream = e.cause ?? {};
  const described = /Description: (.*?) - Correlation ID:/s.exec(upstream.errorMessage ?? e.message ?? '')?.[1];
  const said = redact(described && described !== 'Not Available' ? described : String(e.message ?? err))
    .split(/\r?\n/)[0]!
    .slice(0, 400);
  return {
    said,
    status: upstream.status,
    errorCode: upstream.errorCode,
    unreachable: upstream.errorCode === 'network_error' || /Network unreachable/.test(e.message ?? ''),
  };
}

export function identityKey(identity: Identity, tenantId: string, cloud: CloudEnvironment): string {
  const h = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);
  switch (identity.mode) {
    case 'workloadIdentity':
      return `wi:${cloud.authorityHost}:${tenantId}:${identity.clientId}:${h(`${identity.tokenIssuer}\n${identity.tokenSubject}`)}`;
    case 'servicePrincipal':
      return `sp:${cloud.authorityHost}:${tenantId}:${identity.clientId}:${h(identity.clientSecret)}`;
    case 'managedIdentity':
      return `mi:${identity.clientId ?? 'system'}`;
  }
}
