// Turns what Key Vault returns into file bytes: public keys as PEM, certificates as PEM, and a
// certificate's backing secret as key-then-chain PEM (leaf → root) or the PFX as stored.
import { errorMessage, ProviderError, withPkcs12Budget } from '@secret-store-sync/proto';
import type { JsonWebKey } from '@azure/keyvault-keys';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type forge from 'node-forge';
import { CONTENT, type Text } from './messages.js';
import type { ObjectEncoding, ObjectFormat } from './objects.js';

export const PEM_CONTENT_TYPE = 'application/x-pem-file';
export const PFX_CONTENT_TYPE = 'application/x-pkcs12';

export class ContentError extends ProviderError {
  constructor(message: Text) {
    super('FailedPrecondition', message, 'UnsupportedContent');
  }
}

const b64url = (u: Uint8Array | undefined) => (u ? Buffer.from(u).toString('base64url') : undefined);

/** A Key Vault JSON Web Key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo). */
export function publicKeyPem(jwk: JsonWebKey): string {
  const kty = jwk.kty ?? '';
  let key: KeyObject;
  if (kty === 'RSA' || kty === 'RSA-HSM') {
    if (!jwk.n || !jwk.e) throw new ContentError(CONTENT.rsaWithoutModulus());
    key = createPublicKey({ key: { kty: 'RSA', n: b64url(jwk.n)!, e: b64url(jwk.e)! }, format: 'jwk' });
  } else if (kty === 'EC' || kty === 'EC-HSM') {
    const crv = jwk.crv ?? '';
    if (!['P-256', 'P-384', 'P-521'].includes(crv)) throw new ContentError(CONTENT.unsupportedCurve({ curve: crv }));
    key = createPublicKey({ key: { kty: 'EC', crv, x: b64url(jwk.x)!, y: b64url(jwk.y)! }, format: 'jwk' });
  } else {
    throw new ContentError(CONTENT.noPublicKey({ kty }));
  }
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** A certificate's DER as PEM, with its notAfter (one parse for both). */
export function certificateFile(der: Uint8Array): { pem: string; notAfter: Date | undefined } {
  const cert = new X509Certificate(Buffer.from(der));
  return { pem: cert.toString(), notAfter: earliestNotAfter([cert]) };
}

export interface PemParts {
  keys: string[];
  certs: X509Certificate[];
}

// node-forge is loaded at the first PKCS#12 read: most Mounts never see one, and loading it
// costs about 1.6 MB of committed heap and 1 MB of RSS (bench/README.md, Memory).
let forgeModule: Promise<typeof forge> | undefined;
const loadForge = () => (forgeModule ??= import('node-forge').then((m) => m.default));

/** Reads a base64 PKCS#12 (empty password, as Key Vault serves it); any key type. */
export async function readPfx(base64: string): Promise<PemParts> {
  const forge = await loadForge();
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = withPkcs12Budget(forge, () =>
      forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.decode64(base64.replace(/\s+/g, ''))), ''),
    );
  } catch (e) {
    throw new ContentError(CONTENT.unreadablePkcs12({ detail: errorMessage(e) }));
  }
  const keys: string[] = [];
  const certs: X509Certificate[] = [];
  // node-forge models only RSA keys; for other types it hands back the ASN.1, which Node reads.
  const der = (asn1: forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
  for (const safe of p12.safeContents) {
    for (const bag of safe.safeBags) {
      if (bag.type === forge.pki.oids.certBag) {
        certs.push(new X509Certificate(bag.cert ? forge.pki.certificateToPem(bag.cert) : der(bag.asn1!)));
      } else if (bag.type === forge.pki.oids.pkcs8ShroudedKeyBag || bag.type === forge.pki.oids.keyBag) {
        const k = bag.key
          ? createPrivateKey(forge.pki.privateKeyToPem(bag.key))
          : createPrivateKey({ key: der(bag.asn1!), format: 'der', type: 'pkcs8' });
        keys.push(k.export({ type: 'pkcs8', format: 'pem' }).toString());
      }
    }
  }
  if (certs.length === 0) throw new ContentError(CONTENT.pkcs12WithoutCertificate());
  return { keys, certs };
}

/** Real chains are a leaf, one to three intermediates and a root; a bundle is ordered up to this. */
export const MAX_CHAIN_ORDERED = 16;

/**
 * Orders certificates leaf → intermediates → root by who issued whom. The leaf is the one no other
 * certificate names as issuer. Returns the input order, and false, when the chain has a gap, an
 * unrelated certificate (a missing intermediate must not silently become a wrong chain), two
 * certificates of one subject, or more than MAX_CHAIN_ORDERED certificates.
 *
 * Linear: certificates are indexed by subject, and each is checked against the one certificate
 * with its issuer's name, so a bundle costs one signature check per certificate. Checking every
 * pair cost 2 s for 45 P-384 certificates of one name (8.5 min for a 256-object Mount).
 */
export function orderChain(certs: X509Certificate[]): { ordered: X509Certificate[]; complete: boolean } {
  if (certs.length < 2) return { ordered: certs, complete: true };
  const unordered = { ordered: certs, complete: false };
  if (certs.length > MAX_CHAIN_ORDERED) return unordered;
  const bySubject = new Map<string, X509Certificate>();
  for (const c of certs) {
    if (bySubject.has(c.subject)) return unordered;
    bySubject.set(c.subject, c);
  }
  const issuerOf = new Map<X509Certificate, X509Certificate>();
  for (const c of certs) {
    const p = bySubject.get(c.issuer);
    if (p && p !== c && c.checkIssued(p) && c.verify(p.publicKey)) issuerOf.set(c, p);
  }
  const issuers = new Set(issuerOf.values());
  const leaves = certs.filter((c) => !issuers.has(c));
  if (leaves.length !== 1) return unordered;
  const ordered: X509Certificate[] = [leaves[0]!];
  for (let parent = issuerOf.get(leaves[0]!); parent && !ordered.includes(parent); parent = issuerOf.get(parent))
    ordered.push(parent);
  return ordered.length === certs.length ? { ordered, complete: true } : unordered;
}

export interface CertSecretFiles {
  main: Buffer;
  crt?: Buffer;
  key?: Buffer;
  /** Set when the chain could not be ordered. */
  warning?: string;
  /** When the first certificate of the bundle stops being valid: the bundle is unusable from then. */
  notAfter?: Date;
}

function earliestNotAfter(certs: X509Certificate[]): Date | undefined {
  const times = certs.map((c) => new Date(c.validTo).getTime()).filter((t) => !Number.isNaN(t));
  return times.length ? new Date(Math.min(...times)) : undefined;
}

function withNotAfter(files: CertSecretFiles, certs: X509Certificate[]): CertSecretFiles {
  const notAfter = earliestNotAfter(certs);
  return notAfter ? { ...files, notAfter } : files;
}

/** The backing secret of a certificate, as the object's format asks. */
export async function certificateSecret(
  value: string,
  contentType: string | undefined,
  format: ObjectFormat,
  opts: { constructChain: boolean; separate: boolean },
): Promise<CertSecretFiles> {
  if (contentType === PFX_CONTENT_TYPE) {
    const parts = await readPfx(value);
    if (format === 'pfx') return withNotAfter({ main: Buffer.from(value, 'utf8') }, parts.certs);
    return pemFiles(parts, opts);
  }
  if (contentType === PEM_CONTENT_TYPE) {
    if (format === 'pfx') throw new ContentError(CONTENT.pemAsPfx());
    const keys = value.match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]+-----END [A-Z ]*PRIVATE KEY-----/g) ?? [];
    const certs = (value.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
      (c) => new X509Certificate(c),
    );
    return pemFiles(
      { keys: keys.map((k) => createPrivateKey(k).export({ type: 'pkcs8', format: 'pem' }).toString()), certs },
      opts,
    );
  }
  throw new ContentError(CONTENT.unknownContentType({ contentType, pem: PEM_CONTENT_TYPE, pfx: PFX_CONTENT_TYPE }));
}

function pemFiles(parts: PemParts, opts: { constructChain: boolean; separate: boolean }): CertSecretFiles {
  const { ordered, complete } = opts.constructChain
    ? orderChain(parts.certs)
    : { ordered: parts.certs, complete: true };
  const crt = ordered.map((c) => c.toString()).join('');
  const key = parts.keys.join('');
  return withNotAfter(
    {
      main: Buffer.from(key + crt, 'utf8'),
      ...(opts.separate ? { crt: Buffer.from(crt, 'utf8'), key: Buffer.from(key, 'utf8') } : {}),
      ...(complete
        ? {}
        : {
            warning: `the certificate chain is incomplete, has unrelated or same-named certificates, or more than ${MAX_CHAIN_ORDERED}; kept in the order Key Vault stores it`,
          }),
    },
    parts.certs,
  );
}

/** objectEncoding: how the secret's text is turned into the file's bytes. */
export function decodeSecret(value: string, encoding: ObjectEncoding): Buffer {
  switch (encoding) {
    case 'utf-8':
      return Buffer.from(value, 'utf8');
    case 'base64': {
      const t = value.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) throw new ContentError(CONTENT.notBase64());
      return Buffer.from(t, 'base64');
    }
    case 'hex': {
      const t = value.trim();
      if (!/^([0-9a-fA-F]{2})*$/.test(t)) throw new ContentError(CONTENT.notHex());
      return Buffer.from(t, 'hex');
    }
  }
}
