// Certificate import for the Key Vault emulator: PEM (any key type, through Node's crypto) and
// PKCS#12 (through node-forge, which reads RSA keys only). Produces what Key Vault stores: the
// leaf's DER, the key, and the backing secret in the requested content type with the whole chain.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { KvError } from './store.js';

export const PEM_TYPE = 'application/x-pem-file';
export const PFX_TYPE = 'application/x-pkcs12';

export interface ParsedCertificate {
  key: KeyObject;
  chain: X509Certificate[]; // leaf first
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const PEM_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[^-]+-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

export function parseImport(value: string, contentType: string | undefined, password: string | undefined): ParsedCertificate {
  const looksPem = value.includes('-----BEGIN');
  if (contentType === PEM_TYPE || (contentType === undefined && looksPem)) return parsePem(value, password);
  return parsePfx(value, password ?? '');
}

function parsePem(text: string, password: string | undefined): ParsedCertificate {
  const keyPem = PEM_KEY.exec(text)?.[0];
  const certs = text.match(PEM_CERT) ?? [];
  if (!keyPem) throw bad('The certificate to import must contain its private key (no PRIVATE KEY block in the PEM).');
  if (certs.length === 0) throw bad('No CERTIFICATE block found in the PEM.');
  let key: KeyObject;
  try {
    key = createPrivateKey(password ? { key: keyPem, passphrase: password } : keyPem);
  } catch (e) {
    throw bad(`The private key could not be read: ${(e as Error).message}`);
  }
  return order({ key, chain: certs.map((c) => new X509Certificate(c)) });
}

function parsePfx(base64: string, password: string): ParsedCertificate {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const der = forge.util.decode64(base64.replace(/\s+/g, ''));
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der), password);
  } catch (e) {
    throw bad(`The PKCS#12 content could not be read (wrong password, or not PKCS#12): ${(e as Error).message}`);
  }
  const bags = (type: string): forge.pkcs12.Bag[] => p12.getBags({ bagType: type })[type] ?? [];
  const oids = forge.pki.oids as Record<string, string>;
  const keyBags = [...bags(oids.pkcs8ShroudedKeyBag!), ...bags(oids.keyBag!)];
  const certBags = bags(oids.certBag!);
  const keyBag = keyBags.find((b) => b.key);
  if (!keyBag?.key) throw bad('The PKCS#12 content holds no private key this emulator can read (node-forge reads RSA keys only).');
  const key = createPrivateKey(forge.pki.privateKeyToPem(keyBag.key));
  const chain = certBags.filter((b) => b.cert).map((b) => new X509Certificate(forge.pki.certificateToPem(b.cert!)));
  if (chain.length === 0) throw bad('The PKCS#12 content holds no certificate.');
  return order({ key, chain });
}

/** Puts the certificate that matches the key first, then each issuer after its subject. */
function order(p: ParsedCertificate): ParsedCertificate {
  const leafIndex = p.chain.findIndex((c) => c.checkPrivateKey(p.key));
  if (leafIndex < 0) throw bad('None of the certificates matches the private key.');
  const rest = p.chain.filter((_, i) => i !== leafIndex);
  const ordered = [p.chain[leafIndex]!];
  while (rest.length > 0) {
    const last = ordered.at(-1)!;
    const next = rest.findIndex((c) => c.subject === last.issuer);
    ordered.push(rest.splice(next >= 0 ? next : 0, 1)[0]!);
  }
  return { key: p.key, chain: ordered };
}

/** The backing secret's value, in the content type the policy asks for. */
export function backingSecretValue(p: ParsedCertificate, contentType: string): string {
  if (contentType === PEM_TYPE) {
    const keyPem = p.key.export({ type: 'pkcs8', format: 'pem' }).toString();
    return keyPem + p.chain.map((c) => c.toString()).join('');
  }
  if (p.key.asymmetricKeyType !== 'rsa') {
    throw bad('This emulator can build PKCS#12 backing secrets for RSA keys only; import EC certificates with contentType application/x-pem-file.');
  }
  const forgeKey = forge.pki.privateKeyFromPem(p.key.export({ type: 'pkcs1', format: 'pem' }).toString());
  const certs = p.chain.map((c) => forge.pki.certificateFromPem(c.toString()));
  // Key Vault serves the PFX protected by an empty password.
  const asn1 = forge.pkcs12.toPkcs12Asn1(forgeKey, certs, '', { algorithm: '3des' });
  return forge.util.encode64(forge.asn1.toDer(asn1).getBytes());
}

export function describeLeaf(leaf: X509Certificate) {
  const der = leaf.raw;
  return {
    cer: der.toString('base64'),
    x5t: createHash('sha1').update(der).digest('base64url'),
    subject: leaf.subject.split('\n').reverse().join(', '),
    sans: (leaf.subjectAltName ?? '').split(', ').filter(Boolean),
    notBefore: Math.floor(new Date(leaf.validFrom).getTime() / 1000),
    notAfter: Math.floor(new Date(leaf.validTo).getTime() / 1000),
  };
}

function bad(message: string): KvError {
  return new KvError(400, 'BadParameter', message);
}
