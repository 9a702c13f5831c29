// One SDK client set per (vault, identity), the least recently used dropped first, each built with
// the pipeline policies of pipeline.ts.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import type { CertificateClient } from '@azure/keyvault-certificates';
import type { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import type { Budgets } from './budget.js';
import type { Metrics } from './metrics.js';
import { budgetPolicy, throttleRetryPolicy } from './pipeline.js';
import { VaultRequestMetrics } from './vault-labels.js';

export interface Clients {
  secrets: SecretClient;
  // Loaded and built at their first use: most Mounts read secrets only, and the two SDKs cost
  // heap and RSS at start (bench/README.md).
  keys: () => Promise<KeyClient>;
  certificates: () => Promise<CertificateClient>;
  /** The credential they were built with: a new credential for the identity means new clients. */
  credential: TokenCredential;
  /** The same, as the clients use it: counting its token requests in flight. */
  tokens: PendingTokens;
}

export interface ClientOptions {
  maxRetries: number;
  /** Client sets kept; least recently used dropped first. */
  maxClients: number;
  /** Distinct `vault` label values in the metrics (vault-labels.ts). */
  maxVaultLabels: number;
}

/**
 * A credential that counts its token requests in flight. Every read waits on the client's one token
 * refresh, so a read that times out while one is pending was waiting on Entra, not on Key Vault,
 * and is told so.
 */
export class PendingTokens implements TokenCredential {
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

/** `make` called once, at the first call; a failed load is tried again at the next. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () =>
    (p ??= make().catch((e: unknown) => {
      p = undefined;
      throw e;
    }));
}

export class ClientPool {
  private readonly sets = new Map<string, Clients>(); // insertion order = LRU order
  private readonly requestMetrics: VaultRequestMetrics;

  constructor(
    private readonly opts: ClientOptions,
    private readonly budgets: Budgets,
    metrics: Metrics,
  ) {
    this.requestMetrics = new VaultRequestMetrics(metrics, opts.maxVaultLabels);
  }

  get size(): number {
    return this.sets.size;
  }

  /** The client set of (vault, identity), made anew when the identity's credential changed. */
  get(vaultUrl: string, vaultName: string, credential: TokenCredential, identityKey: string): Clients {
    const key = `${vaultUrl}|${identityKey}`;
    let clients = this.sets.get(key);
    if (clients) this.sets.delete(key);
    if (!clients || clients.credential !== credential) {
      clients = this.make(vaultUrl, vaultName, credential, identityKey);
      for (const k of this.sets.keys()) {
        if (this.sets.size < this.opts.maxClients) break;
        this.sets.delete(k);
      }
    }
    this.sets.set(key, clients);
    return clients;
  }

  private make(vaultUrl: string, vaultName: string, credential: TokenCredential, identityKey: string): Clients {
    const options = {
      retryOptions: { maxRetries: this.opts.maxRetries, retryDelayInMs: 250, maxRetryDelayInMs: 8_000 },
      additionalPolicies: [
        { policy: throttleRetryPolicy(this.opts.maxRetries) as never, position: 'perCall' as const },
        {
          policy: budgetPolicy(this.budgets, this.requestMetrics, vaultName, identityKey) as never,
          position: 'perRetry' as const,
        },
      ],
      userAgentOptions: { userAgentPrefix: 'secret-store-sync-provider-azure' },
    };
    const tokens = new PendingTokens(credential);
    return {
      secrets: new SecretClient(vaultUrl, tokens, options),
      keys: once(async () => new (await import('@azure/keyvault-keys')).KeyClient(vaultUrl, tokens, options)),
      certificates: once(
        async () => new (await import('@azure/keyvault-certificates')).CertificateClient(vaultUrl, tokens, options),
      ),
      credential,
      tokens,
    };
  }
}
