// Change keys (proto/changes.proto): at Mount time each object gets an opaque key that the
// provider's change notices name when Key Vault says the object has a new version. The key is a
// short hash of (vault host, object name), so the manager learns nothing about Azure from it and a
// notice maps to every Mount that read that object, whatever identity read it.
//
// The object type is left out on purpose. A certificate's new version is also a new version of
// the secret and the key of the same name ("When a Key Vault certificate is created, an
// addressable key and secret are also created with the same name", learn.microsoft.com/azure/
// key-vault/certificates/about-certificates#composition-of-a-certificate; they share the version
// id, ../shared/reference/real-azure-behaviour.md), while Key Vault publishes only
// CertificateNewVersionCreated for it: so a `secret` object backed by a certificate must hear the
// certificate's event. The price is that a key and an unrelated secret of one name share a key,
// and an event for one costs the other a re-read that finds its version unchanged.
import { createHash } from 'node:crypto';

/**
 * Key Vault names are case-insensitive (learn.microsoft.com/azure/key-vault/general/about-keys-
 * secrets-certificates#object-identifiers), as are hosts: both are lowercased.
 */
export function changeKey(vaultHost: string, objectName: string): string {
  // 96 bits: collisions are harmless (one extra read) and the trailer stays small.
  return createHash('sha256')
    .update(`${vaultHost.toLowerCase()}\n${objectName.toLowerCase()}`)
    .digest('base64url')
    .slice(0, 16);
}

/** The host of a vault URL, lowercase, as an event's `data.Id` names it. */
export function vaultHost(vaultUrl: string): string {
  return new URL(vaultUrl).host.toLowerCase();
}

/**
 * The trailer stays well under the 32 KiB a manager accepts (MAX_TRAILER_BYTES), whatever the
 * Mount lists: past this, objects get no key and are polled as without events.
 */
export const MAX_CHANGE_KEYS_BYTES = 24 * 1024;
