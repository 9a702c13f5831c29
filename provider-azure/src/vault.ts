// Key Vault access with a request budget: one SDK client set per (vault, identity), every HTTP
// attempt metered and held to the vault's token bucket and concurrency cap, identical in-flight
// reads joined, and values read by explicit version (immutable in Key Vault) cached per identity.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import type { CertificateClient } from '@azure/keyvault-certificates';
import type { JsonWebKey, KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import type { Budgets } from './budget.js';
import { ProviderError } from '@secret-store-sync/proto';
import { ENTRA_TRY_TIMEOUT_MS } from './credentials.js';
import { toProviderError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { ObjectType } from './objects.js';
import { VaultRequestMetrics } from './vault-labels.js';

export interface SecretValue {
  value: string;
  version: string;
  contentType?: string;
  /** Set when the secret backs a certificate. */
  keyId?: string;
  /** The version's `exp` attribute, when set. */
  expiresOn?: Date;
}
export interface KeyValue {
  jwk: JsonWebKey;
  version: string;
  enabled: boolean;
  expiresOn?: Date;
}
export interface CertificateValue {
  cer: Uint8Array;
  version: string;
  enabled: boolean;
  /** The certificate's `exp` attribute: its notAfter. */
  expiresOn?: Date;
}
export interface VersionInfo {
  version: string;
  enabled: boolean;
  created: number;
}

export interface AccessOptions {
  maxRetries: number;
  cacheTtlMs: number;
  cacheMaxBytes: number;
  /** SDK client sets kept, one per (vault, identity); least recently used dropped first. */
  maxClients: number;
  /** A cached value is served only if Key Vault gave this identity that very version (or listed it enabled) this recently. */
  authWindowMs: number;
  /** Distinct `vault` label values in the metrics, earned by an HTTP answer (vault-labels.ts); the rest are "other". */
  maxVaultLabels: number;
  /**
   * Deadline of one read, retries included. A hung read would otherwise hold its budget slot and
   * gather every identical Mount that joins it; kept below the manager's provider deadline.
   */
  requestTimeoutMs: number;
}

interface Clients {
  secrets: SecretClient;
  // Loaded and built at their first use: most Mounts read secrets only, and the two SDKs are
  // 2 MB of heap and RSS at start (measured: bench/README.md).
  keys: () => Promise<KeyClient>;
  certificates: () => Promise<CertificateClient>;
  /** The credential they were built with: a new credential for the identity means new clients. */
  credential: TokenCredential;
  /** The same, as the clients use it: counting its token requests in flight. */
  tokens: PendingTokens;
}

/**
 * A credential that counts its token requests in flight. Every read waits on the client's one token
 * refresh, so a read that times out while one is pending was waiting on Entra, not on Key Vault,
 * and is told so.
 */
class PendingTokens implements TokenCredential {
  pending = 0;
  constructor(private readonly inner: TokenCredential) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.pending++;
    try {
      return await this.inner.getToken(scopes, options);
    } finally {
      this.pending--;
    }
  }
}

interface CacheEntry {
  value: unknown;
  bytes: number;
  expires: number;
  /**
   * When Key Vault last gave this identity this version, or listed it as enabled. Kept per entry, not
   * per vault or object: reads of other objects, or of the same object's current version, say nothing
   * about whether this version is still readable (a role on one secret revoked, a version disabled).
   */
  authorizedAt: number;
}

interface InFlight {
  promise: Promise<unknown>;
  /** Aborts the shared request once every caller waiting for it has gone. */
  controller: AbortController;
  callers: number;
  settled: boolean;
}

/** The per-attempt policy: budget, metrics. Structurally an @azure/core-rest-pipeline PipelinePolicy. */
interface Policy {
  name: string;
  sendRequest(
    request: { url: string; abortSignal?: AbortSignal },
    next: (request: never) => Promise<{ status: number }>,
  ): Promise<{ status: number }>;
}

/** Bookkeeping per entry in the cache, so a flood of tiny values is bounded by count too. */
const CACHE_ENTRY_OVERHEAD = 256;

export function operationOf(url: string): string {
  const path = new URL(url).pathname.split('/').filter(Boolean);
  const [kind, , third] = path;
  if (!kind) return 'other';
  if (path.length === 1) return `${kind}/list`;
  return third === 'versions' ? `${kind}/versions` : `${kind}/get`;
}

/** `make` called once, at the first call; a failed load is tried again at the next. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () =>
    (p ??= make().catch((e: unknown) => {
      p = undefined;
      throw e;
    }));
}

/** Deletes the least recently used entries of an insertion-ordered map until it has room for one more. */
function makeRoom<K, V>(map: Map<K, V>, max: number, keep: (v: V) => boolean = () => false): void {
  for (const [k, v] of map) {
    if (map.size < max) return;
    if (!keep(v)) map.delete(k);
  }
}

export class KeyVaultAccess {
  private readonly clients = new Map<string, Clients>(); // insertion order = LRU order
  private readonly inflight = new Map<string, InFlight>();
  private readonly cache = new Map<string, CacheEntry>(); // insertion order = LRU order
  private cacheBytes = 0;
  private readonly requestMetrics: VaultRequestMetrics;

  constructor(
    private readonly opts: AccessOptions,
    private readonly budgets: Budgets,
    private readonly metrics: Metrics,
  ) {
    this.requestMetrics = new VaultRequestMetrics(metrics, opts.maxVaultLabels);
  }

  session(vaultUrl: string, vaultName: string, credential: TokenCredential, identityKey: string): VaultSession {
    const clientKey = `${vaultUrl}|${identityKey}`;
    let clients = this.clients.get(clientKey);
    if (clients) this.clients.delete(clientKey);
    if (!clients || clients.credential !== credential) {
      const options = {
        retryOptions: { maxRetries: this.opts.maxRetries, retryDelayInMs: 250, maxRetryDelayInMs: 8_000 },
        additionalPolicies: [
          { policy: throttleRetryPolicy(this.opts.maxRetries) as never, position: 'perCall' as const },
          { policy: this.policyFor(vaultName, identityKey) as never, position: 'perRetry' as const },
        ],
        userAgentOptions: { userAgentPrefix: 'secret-store-sync-provider-azure' },
      };
      const tokens = new PendingTokens(credential);
      clients = {
        secrets: new SecretClient(vaultUrl, tokens, options),
        keys: once(async () => new (await import('@azure/keyvault-keys')).KeyClient(vaultUrl, tokens, options)),
        certificates: once(
          async () => new (await import('@azure/keyvault-certificates')).CertificateClient(vaultUrl, tokens, options),
        ),
        credential,
        tokens,
      };
      makeRoom(this.clients, this.opts.maxClients);
    }
    this.clients.set(clientKey, clients);
    return new VaultSession(this, clients, vaultName, identityKey);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  private policyFor(vault: string, identityKey: string): Policy {
    return {
      name: 'secretStoreSyncBudget',
      sendRequest: async (request, next) => {
        // Looked up per attempt: an idle budget may have been dropped and made anew meanwhile.
        const budget = this.budgets.for(vault);
        await budget.bucket.take(identityKey, request.abortSignal);
        const release = await budget.slots.acquire(identityKey, request.abortSignal);
        const operation = operationOf(request.url);
        const started = performance.now();
        let status: number | undefined;
        try {
          const res = await next(request as never);
          status = res.status;
          return res;
        } finally {
          this.requestMetrics.record(vault, operation, status, (performance.now() - started) / 1000);
          release();
        }
      },
    };
  }

  /**
   * Joins identical in-flight reads and answers explicit versions from the cache — the cache only
   * while Key Vault accepted this identity for that version within the window, so revoked access or
   * a disabled version is not served from memory. The shared request is cancelled when every
   * caller has gone.
   */
  async read<T>(
    key: string,
    cacheable: boolean,
    fetch: (signal: AbortSignal) => Promise<T>,
    sizeOf: (v: T) => number,
    signal?: AbortSignal,
  ): Promise<T> {
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit && hit.expires > Date.now() && Date.now() - hit.authorizedAt <= this.opts.authWindowMs) {
        this.cache.delete(key);
        this.cache.set(key, hit);
        this.metrics.cacheLookups.inc({ result: 'hit' });
        return hit.value as T;
      }
      if (hit && hit.expires <= Date.now()) this.drop(key);
    }
    let entry = this.inflight.get(key);
    if (entry) {
      this.metrics.cacheLookups.inc({ result: 'coalesced' });
    } else {
      this.metrics.cacheLookups.inc({ result: 'miss' });
      const controller = new AbortController();
      const created: InFlight = { controller, callers: 0, settled: false, promise: Promise.resolve() };
      const timeout = AbortSignal.timeout(this.opts.requestTimeoutMs);
      created.promise = fetch(AbortSignal.any([controller.signal, timeout]))
        .catch((e: unknown) => {
          if (!timeout.aborted || controller.signal.aborted || !(e instanceof ProviderError)) throw e;
          throw new ProviderError(
            'Unavailable',
            `${e.message.replace(/: the request was cancelled$/, '')}: Key Vault did not answer within ${this.opts.requestTimeoutMs / 1000} s`,
            'VaultTimeout',
          );
        })
        .finally(() => {
          created.settled = true;
          if (this.inflight.get(key) === created) this.inflight.delete(key);
        });
      this.inflight.set(key, created);
      entry = created;
    }
    const shared = entry;
    shared.callers++;
    try {
      const value = (await raceAbort(shared.promise, signal)) as T;
      if (cacheable) this.remember(key, value, sizeOf(value));
      return value;
    } finally {
      if (--shared.callers === 0 && !shared.settled) {
        shared.controller.abort(Object.assign(new Error('every caller of this read has gone'), { name: 'AbortError' }));
        if (this.inflight.get(key) === shared) this.inflight.delete(key);
      }
    }
  }

  remember(key: string, value: unknown, bytes: number): void {
    const cost = bytes + CACHE_ENTRY_OVERHEAD;
    if (this.opts.cacheTtlMs <= 0 || cost > this.opts.cacheMaxBytes) return;
    this.drop(key);
    this.cache.set(key, { value, bytes: cost, expires: Date.now() + this.opts.cacheTtlMs, authorizedAt: Date.now() });
    this.cacheBytes += cost;
    for (const k of this.cache.keys()) {
      if (this.cacheBytes <= this.opts.cacheMaxBytes) break;
      this.drop(k);
    }
  }

  /** Key Vault just listed this cached version as enabled to this identity: it may be served again. */
  vouch(key: string): void {
    const e = this.cache.get(key);
    if (e) e.authorizedAt = Date.now();
  }

  private drop(key: string): void {
    const e = this.cache.get(key);
    if (!e) return;
    this.cacheBytes -= e.bytes;
    this.cache.delete(key);
  }
}

interface Headers {
  get(name: string): string | undefined;
}
const RETRY_AFTER_HEADERS = ['retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'];

/**
 * Backs off on a 429 that carries no Retry-After. Real Key Vault often sends none (its throttling
 * guidance tells clients to back off exponentially themselves), and the SDK's retry policy retries
 * a 429 only when one of RETRY_AFTER_HEADERS is present (@azure/core-rest-pipeline
 * throttlingRetryStrategy; its exponential strategy covers 408 and 5xx). Jittered, doubling from
 * 0.5 s to 8 s, at most `maxRetries` times; every re-send passes the vault's budget again, and the
 * wait ends with the request's abort signal (the Mount's deadline).
 */
export function throttleRetryPolicy(maxRetries: number, baseMs = 500): Policy {
  const throttledWithoutHint = (status: number | undefined, headers: Headers | undefined) =>
    status === 429 && !RETRY_AFTER_HEADERS.some((h) => headers?.get(h));
  return {
    name: 'secretStoreSyncThrottleRetry',
    async sendRequest(request, next) {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = (await next(request as never)) as { status: number; headers?: Headers };
          if (attempt >= maxRetries || !throttledWithoutHint(res.status, res.headers)) return res;
        } catch (e) {
          const err = e as { statusCode?: number; response?: { headers?: Headers } };
          if (attempt >= maxRetries || !throttledWithoutHint(err.statusCode, err.response?.headers)) throw e;
        }
        const wait = Math.min(8_000, baseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        await new Promise<void>((resolve, reject) => {
          const signal = request.abortSignal;
          if (signal?.aborted) return reject(signal.reason);
          const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), wait);
          const onAbort = () => (clearTimeout(t), reject(signal!.reason));
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
    },
  };
}

function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

/** Reads from one vault as one identity. Shared requests are cancelled only when all their callers have gone. */
export class VaultSession {
  constructor(
    private readonly access: KeyVaultAccess,
    private readonly clients: Clients,
    readonly vault: string,
    private readonly identityKey: string,
  ) {}

  private cacheKey(type: ObjectType, name: string, version: string): string {
    return `${this.identityKey}|${this.vault}|${type}|${name}|${version}`;
  }

  /** A read that timed out with the identity's token request still in flight waited on Entra. */
  private async blamed<T>(read: Promise<T>): Promise<T> {
    try {
      return await read;
    } catch (e) {
      if (!(e instanceof ProviderError) || e.reason !== 'VaultTimeout' || this.clients.tokens.pending === 0) throw e;
      const said = e.message.replace(
        /Key Vault did not answer within (\d+) s$/,
        `Entra ID gave no token within $1 s (each token request is given ${ENTRA_TRY_TIMEOUT_MS / 1000} s, then retried)`,
      );
      throw new ProviderError('Unavailable', said, 'EntraTimeout', { cause: e });
    }
  }

  private async guarded<T>(what: string, signal: AbortSignal, f: () => Promise<T>): Promise<T> {
    try {
      // Raced: the SDK's wait for a token (the client's one refresh in flight) does not heed the
      // signal, so without the race a read's deadline did not end a read stuck behind Entra.
      return await raceAbort(f(), signal);
    } catch (e) {
      throw toProviderError(
        signal.aborted ? Object.assign(new Error('the request was cancelled'), { name: 'AbortError' }) : e,
        this.vault,
        what,
      );
    }
  }

  private describe(type: string, name: string, version: string): string {
    return `${type} '${name}'${version ? ` version '${version}'` : ''}`;
  }

  async secret(name: string, version: string, signal?: AbortSignal): Promise<SecretValue> {
    const v = await this.blamed(
      this.access.read(
        this.cacheKey('secret', name, version),
        version !== '',
        (abortSignal) =>
          this.guarded(this.describe('secret', name, version), abortSignal, async () => {
            const s = await this.clients.secrets.getSecret(name, version ? { version, abortSignal } : { abortSignal });
            if (s.value === undefined) throw new Error('Key Vault returned the secret without a value');
            return {
              value: s.value,
              version: s.properties.version ?? '',
              ...(s.properties.contentType ? { contentType: s.properties.contentType } : {}),
              ...(s.properties.certificateKeyId ? { keyId: s.properties.certificateKeyId } : {}),
              ...(s.properties.expiresOn ? { expiresOn: s.properties.expiresOn } : {}),
            };
          }),
        (s) => s.value.length * 2,
        signal,
      ),
    );
    if (!version) this.access.remember(this.cacheKey('secret', name, v.version), v, v.value.length * 2);
    return v;
  }

  async key(name: string, version: string, signal?: AbortSignal): Promise<KeyValue> {
    const k = await this.blamed(
      this.access.read(
        this.cacheKey('key', name, version),
        version !== '',
        (abortSignal) =>
          this.guarded(this.describe('key', name, version), abortSignal, async () => {
            const k = await (
              await this.clients.keys()
            ).getKey(name, version ? { version, abortSignal } : { abortSignal });
            if (!k.key) throw new Error('Key Vault returned the key without its JSON Web Key');
            return {
              jwk: k.key,
              version: k.properties.version ?? '',
              enabled: k.properties.enabled !== false,
              ...(k.properties.expiresOn ? { expiresOn: k.properties.expiresOn } : {}),
            };
          }),
        () => 2048,
        signal,
      ),
    );
    if (!version) this.access.remember(this.cacheKey('key', name, k.version), k, 2048);
    return k;
  }

  async certificate(name: string, version: string, signal?: AbortSignal): Promise<CertificateValue> {
    const c = await this.blamed(
      this.access.read(
        this.cacheKey('cert', name, version),
        version !== '',
        (abortSignal) =>
          this.guarded(this.describe('certificate', name, version), abortSignal, async () => {
            const certificates = await this.clients.certificates();
            const c = version
              ? await certificates.getCertificateVersion(name, version, { abortSignal })
              : await certificates.getCertificate(name, { abortSignal });
            if (!c.cer) throw new Error('Key Vault returned the certificate without its body');
            return {
              cer: c.cer,
              version: c.properties.version ?? '',
              enabled: c.properties.enabled !== false,
              ...(c.properties.expiresOn ? { expiresOn: c.properties.expiresOn } : {}),
            };
          }),
        (c) => c.cer.length,
        signal,
      ),
    );
    if (!version) this.access.remember(this.cacheKey('cert', name, c.version), c, c.cer.length);
    return c;
  }

  /** All versions of an object (never cached: new versions appear), joined when identical. */
  async versions(type: ObjectType, name: string, signal?: AbortSignal): Promise<VersionInfo[]> {
    return this.blamed(
      this.access.read(
        this.cacheKey(type, name, '*versions'),
        false,
        (abortSignal) =>
          this.guarded(`versions of ${type === 'cert' ? 'certificate' : type} '${name}'`, abortSignal, async () => {
            const out: VersionInfo[] = [];
            const pages =
              type === 'secret'
                ? this.clients.secrets.listPropertiesOfSecretVersions(name, { abortSignal })
                : type === 'key'
                  ? (await this.clients.keys()).listPropertiesOfKeyVersions(name, { abortSignal })
                  : (await this.clients.certificates()).listPropertiesOfCertificateVersions(name, { abortSignal });
            for await (const p of pages) {
              out.push({
                version: p.version ?? '',
                enabled: p.enabled !== false,
                created: p.createdOn?.getTime() ?? 0,
              });
            }
            // A history Mount lists the versions first: the enabled ones it reads next are served from
            // the cache, as a pinned read of each would have been (a disabled one never is).
            for (const v of out) if (v.enabled) this.access.vouch(this.cacheKey(type, name, v.version));
            return out;
          }),
        () => 0,
        signal,
      ),
    );
  }
}
