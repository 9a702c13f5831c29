// Azure credentials per identity, reused across Mounts so Entra tokens are cached — but keyed so
// that a token obtained for one workload is never used for another: a workload-identity credential
// is keyed by the service account (issuer + subject) that presented the assertion, not just by
// client id, because Entra decides per federated subject.
import { ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { createHash } from 'node:crypto';
import { KNOWN_AUTHORITY_HOSTS, type CloudEnvironment } from './cloud.js';
import type { Identity } from './params.js';

interface Entry {
  credential: TokenCredential;
  /** The newest service-account token seen for this key; the assertion callback reads it. */
  assertion?: string;
  lastUsed: number;
}

const MAX_ENTRIES = 5_000;

export class Credentials {
  private readonly entries = new Map<string, Entry>();

  /** Returns the credential and a key that identifies the caller's identity (for caches). */
  get(identity: Identity, tenantId: string, cloud: CloudEnvironment): { credential: TokenCredential; key: string } {
    const key = identityKey(identity, tenantId, cloud);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { credential: this.create(identity, tenantId, cloud, () => entry!.assertion ?? ''), lastUsed: 0 };
      this.entries.set(key, entry);
      this.evict();
    }
    if (identity.mode === 'workloadIdentity') entry.assertion = identity.token;
    entry.lastUsed = Date.now();
    return { credential: entry.credential, key };
  }

  private create(identity: Identity, tenantId: string, cloud: CloudEnvironment, assertion: () => string): TokenCredential {
    const common = {
      authorityHost: cloud.authorityHost,
      // Instance discovery asks login.microsoftonline.com about the authority; for any other host
      // (sovereign stacks, test stand-ins) it would fail, and skipping it is harmless.
      disableInstanceDiscovery: !KNOWN_AUTHORITY_HOSTS.has(cloud.authorityHost),
    };
    switch (identity.mode) {
      case 'workloadIdentity':
        return new ClientAssertionCredential(tenantId, identity.clientId, async () => assertion(), common);
      case 'servicePrincipal':
        return new ClientSecretCredential(tenantId, identity.clientId, identity.clientSecret, common);
      case 'managedIdentity':
        return identity.clientId ? new ManagedIdentityCredential({ clientId: identity.clientId }) : new ManagedIdentityCredential();
    }
  }

  private evict(): void {
    if (this.entries.size <= MAX_ENTRIES) return;
    const oldest = [...this.entries.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed).slice(0, this.entries.size - MAX_ENTRIES);
    for (const [k] of oldest) this.entries.delete(k);
  }
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
