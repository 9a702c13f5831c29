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
