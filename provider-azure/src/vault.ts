// Key Vault access with a request budget: one SDK client set per (vault, identity), every HTTP
// attempt metered and held to the vault's token bucket and concurrency cap, identical in-flight
// reads joined, and values read by explicit version (immutable in Key Vault) cached per identity.
import type { TokenCredential } from '@azure/identity';
import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient, type JsonWebKey } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import type { Budgets } from './budget.js';
import { toProviderError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { ObjectType } from './objects.js';

export interface SecretValue {
  value: string;
  version: string;
  contentType?: string;
  /** Set when the secret backs a certificate. */
  keyId?: string;
}
export interface KeyValue {
  jwk: JsonWebKey;
  version: string;
}
export interface CertificateValue {
  cer: Uint8Array;
  version: string;
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
}

interface Clients {
  secrets: SecretClient;
  keys: KeyClient;
  certificates: CertificateClient;
}

interface CacheEntry {
  value: unknown;
  bytes: number;
  expires: number;
}

/** The per-attempt policy: budget, metrics. Structurally an @azure/core-rest-pipeline PipelinePolicy. */
interface Policy {
  name: string;
  sendRequest(request: { url: string }, next: (request: never) => Promise<{ status: number }>): Promise<{ status: number }>;
}

export function operationOf(url: string): string {
  const path = new URL(url).pathname.split('/').filter(Boolean);
  const [kind, , third] = path;
  if (!kind) return 'other';
  if (path.length === 1) return `${kind}/list`;
  return third === 'versions' ? `${kind}/versions` : `${kind}/get`;
}

export class KeyVaultAccess {
  private readonly clients = new Map<string, Clients>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly cache = new Map<string, CacheEntry>(); // insertion order = LRU order
  private cacheBytes = 0;

  constructor(
    private readonly opts: AccessOptions,
    private readonly budgets: Budgets,
    private readonly metrics: Metrics,
  ) {}

  session(vaultUrl: string, vaultName: string, credential: TokenCredential, identityKey: string): VaultSession {
    const clientKey = `${vaultUrl}|${identityKey}`;
    let clients = this.clients.get(clientKey);
    if (!clients) {
      const options = {
        retryOptions: { maxRetries: this.opts.maxRetries, retryDelayInMs: 250, maxRetryDelayInMs: 8_000 },
        additionalPolicies: [{ policy: this.policyFor(vaultName) as never, position: 'perRetry' as const }],
        userAgentOptions: { userAgentPrefix: 'secret-store-sync-provider-azure' },
      };
      clients = {
        secrets: new SecretClient(vaultUrl, credential, options),
        keys: new KeyClient(vaultUrl, credential, options),
        certificates: new CertificateClient(vaultUrl, credential, options),
      };
      this.clients.set(clientKey, clients);
    }
    return new VaultSession(this, clients, vaultName, identityKey);
  }

  private policyFor(vault: string): Policy {
    const budget = this.budgets.for(vault);
    const { keyvaultRequests, keyvaultDuration } = this.metrics;
    return {
      name: 'secretStoreSyncBudget',
      async sendRequest(request, next) {
        await budget.bucket.take();
        const release = await budget.slots.acquire();
        const operation = operationOf(request.url);
        const stop = keyvaultDuration.startTimer({ vault, operation });
        try {
          const res = await next(request as never);
          keyvaultRequests.inc({ vault, operation, status: String(res.status) });
          return res;
        } catch (e) {
          keyvaultRequests.inc({ vault, operation, status: 'error' });
          throw e;
        } finally {
          stop();
          release();
        }
      },
    };
  }

  /** Joins identical in-flight reads and answers explicit versions from the cache. */
  async read<T>(key: string, cacheable: boolean, fetch: () => Promise<T>, sizeOf: (v: T) => number, signal?: AbortSignal): Promise<T> {
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit && hit.expires > Date.now()) {
        this.cache.delete(key);
        this.cache.set(key, hit);
        this.metrics.cacheLookups.inc({ result: 'hit' });
        return hit.value as T;
      }
      if (hit) this.drop(key);
    }
    let pending = this.inflight.get(key) as Promise<T> | undefined;
    if (pending) {
      this.metrics.cacheLookups.inc({ result: 'coalesced' });
    } else {
      this.metrics.cacheLookups.inc({ result: 'miss' });
      pending = fetch().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const value = await raceAbort(pending, signal);
    if (cacheable) this.remember(key, value, sizeOf(value));
    return value;
  }

  remember(key: string, value: unknown, bytes: number): void {
    if (this.opts.cacheTtlMs <= 0 || bytes > this.opts.cacheMaxBytes) return;
    this.drop(key);
    this.cache.set(key, { value, bytes, expires: Date.now() + this.opts.cacheTtlMs });
    this.cacheBytes += bytes;
    for (const k of this.cache.keys()) {
      if (this.cacheBytes <= this.opts.cacheMaxBytes) break;
      this.drop(k);
    }
  }

  private drop(key: string): void {
    const e = this.cache.get(key);
    if (!e) return;
    this.cacheBytes -= e.bytes;
    this.cache.delete(key);
  }
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

/** Reads from one vault as one identity. Shared requests are never cancelled by one caller. */
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

  private async guarded<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toProviderError(e, this.vault, what);
    }
  }

  private describe(type: string, name: string, version: string): string {
    return `${type} '${name}'${version ? ` version '${version}'` : ''}`;
  }

  async secret(name: string, version: string, signal?: AbortSignal): Promise<SecretValue> {
    const v = await this.access.read(
      this.cacheKey('secret', name, version),
      version !== '',
      () =>
        this.guarded(this.describe('secret', name, version), async () => {
          const s = await this.clients.secrets.getSecret(name, version ? { version } : {});
          if (s.value === undefined) throw new Error('Key Vault returned the secret without a value');
          return { value: s.value, version: s.properties.version ?? '', ...(s.properties.contentType ? { contentType: s.properties.contentType } : {}), ...(s.properties.certificateKeyId ? { keyId: s.properties.certificateKeyId } : {}) };
        }),
      (s) => s.value.length * 2,
      signal,
    );
    if (!version) this.access.remember(this.cacheKey('secret', name, v.version), v, v.value.length * 2);
    return v;
  }

  async key(name: string, version: string, signal?: AbortSignal): Promise<KeyValue> {
    return this.access.read(
      this.cacheKey('key', name, version),
      version !== '',
      () =>
        this.guarded(this.describe('key', name, version), async () => {
          const k = await this.clients.keys.getKey(name, version ? { version } : {});
          if (!k.key) throw new Error('Key Vault returned the key without its JSON Web Key');
          return { jwk: k.key, version: k.properties.version ?? '' };
        }),
      () => 2048,
      signal,
    );
  }

  async certificate(name: string, version: string, signal?: AbortSignal): Promise<CertificateValue> {
    return this.access.read(
      this.cacheKey('cert', name, version),
      version !== '',
      () =>
        this.guarded(this.describe('certificate', name, version), async () => {
          const c = version ? await this.clients.certificates.getCertificateVersion(name, version) : await this.clients.certificates.getCertificate(name);
          if (!c.cer) throw new Error('Key Vault returned the certificate without its body');
          return { cer: c.cer, version: c.properties.version ?? '' };
        }),
      (c) => c.cer.length,
      signal,
    );
  }

  /** All versions of an object (never cached: new versions appear), joined when identical. */
  async versions(type: ObjectType, name: string, signal?: AbortSignal): Promise<VersionInfo[]> {
    return this.access.read(
      this.cacheKey(type, name, '*versions'),
      false,
      () =>
        this.guarded(`versions of ${type === 'cert' ? 'certificate' : type} '${name}'`, async () => {
          const out: VersionInfo[] = [];
          const pages =
            type === 'secret'
              ? this.clients.secrets.listPropertiesOfSecretVersions(name)
              : type === 'key'
                ? this.clients.keys.listPropertiesOfKeyVersions(name)
                : this.clients.certificates.listPropertiesOfCertificateVersions(name);
          for await (const p of pages) {
            out.push({ version: p.version ?? '', enabled: p.enabled !== false, created: p.createdOn?.getTime() ?? 0 });
          }
          return out;
        }),
      () => 0,
      signal,
    );
  }
}
