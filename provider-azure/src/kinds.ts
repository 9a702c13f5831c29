// What a read of each object kind is: the SDK call, the shape of its result, and what that costs in
// the value cache. vault.ts reads all three through this one table.
import type { JsonWebKey } from '@azure/keyvault-keys';
import type { Clients } from './clients.js';
import type { ObjectType } from './objects.js';

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

/** The value a read of each kind returns. */
export interface ObjectValues {
  secret: SecretValue;
  key: KeyValue;
  cert: CertificateValue;
}

/** One version's properties as the SDKs list them. */
interface ListedVersion {
  version?: string;
  enabled?: boolean;
  createdOn?: Date;
}

interface Kind<T> {
  /** The kind as messages name it. */
  noun: string;
  /** One version (`version` '' = the current one). */
  get(clients: Clients, name: string, version: string, abortSignal: AbortSignal): Promise<T>;
  /** The properties of every version. */
  versions(clients: Clients, name: string, abortSignal: AbortSignal): Promise<AsyncIterable<ListedVersion>>;
  /** Bytes it holds in the value cache. */
  bytes(value: T): number;
}

/** A key's or certificate's version fields. */
const versionOf = (p: { version?: string; enabled?: boolean; expiresOn?: Date }) => ({
  version: p.version ?? '',
  enabled: p.enabled !== false,
  ...(p.expiresOn ? { expiresOn: p.expiresOn } : {}),
});

const sdkOptions = (version: string, abortSignal: AbortSignal) =>
  version ? { version, abortSignal } : { abortSignal };

export const KINDS: { readonly [K in ObjectType]: Kind<ObjectValues[K]> } = {
  secret: {
    noun: 'secret',
    async get(clients, name, version, abortSignal) {
      const s = await clients.secrets.getSecret(name, sdkOptions(version, abortSignal));
      if (s.value === undefined) throw new Error('Key Vault returned the secret without a value');
      const p = s.properties;
      return {
        value: s.value,
        version: p.version ?? '',
        ...(p.contentType ? { contentType: p.contentType } : {}),
        ...(p.certificateKeyId ? { keyId: p.certificateKeyId } : {}),
        ...(p.expiresOn ? { expiresOn: p.expiresOn } : {}),
      };
    },
    versions: async (clients, name, abortSignal) =>
      clients.secrets.listPropertiesOfSecretVersions(name, { abortSignal }),
    bytes: (s) => s.value.length * 2,
  },
  key: {
    noun: 'key',
    async get(clients, name, version, abortSignal) {
      const k = await (await clients.keys()).getKey(name, sdkOptions(version, abortSignal));
      if (!k.key) throw new Error('Key Vault returned the key without its JSON Web Key');
      return { jwk: k.key, ...versionOf(k.properties) };
    },
    versions: async (clients, name, abortSignal) =>
      (await clients.keys()).listPropertiesOfKeyVersions(name, { abortSignal }),
    bytes: () => 2048,
  },
  cert: {
    noun: 'certificate',
    async get(clients, name, version, abortSignal) {
      const certificates = await clients.certificates();
      const c = version
        ? await certificates.getCertificateVersion(name, version, { abortSignal })
        : await certificates.getCertificate(name, { abortSignal });
      if (!c.cer) throw new Error('Key Vault returned the certificate without its body');
      return { cer: c.cer, ...versionOf(c.properties) };
    },
    versions: async (clients, name, abortSignal) =>
      (await clients.certificates()).listPropertiesOfCertificateVersions(name, { abortSignal }),
    bytes: (c) => c.cer.length,
  },
};
