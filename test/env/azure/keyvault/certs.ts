// Certificate import for the Key Vault emulator: PEM (any key type, through Node's crypto) and
// PKCS#12 (RSA through node-forge; other key types, which node-forge cannot model, through the
// openssl command). Produces what Key Vault stores: the leaf's DER, the key, and the backing
// secret in the requested content type with the whole chain in the order it was uploaded — Key
// Vault does not reorder it (maintainer comment in
// Azure/secrets-store-csi-driver-provider-azure#156), so ordering is the reader's job.
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { KvError } from './store.js';

export const PEM_TYPE = 'application/x-pem-file';
export const PFX_TYPE = 'application/x-pkcs12';

export interface ParsedCertificate {
  key: KeyObject;
  /** In upload order. */
  chain: X509Certificate[];
  /** The certificate whose public key matches the private key: what `cer` holds. */
  leaf: X509Certificate;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const PEM_KEY =
  /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[^-]+-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

export function parseImport(
  value: string,
  contentType: string | undefined,
  password: string | undefined,
): ParsedCertificate {
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
  return withLeaf(
    key,
    certs.map((c) => new X509Certificate(c)),
  );
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
  // node-forge models RSA keys only; an EC PFX (which Key Vault imports) goes through openssl.
  if (!keyBag?.key) return parsePfxWithOpenssl(base64, password);
  const key = createPrivateKey(forge.pki.privateKeyToPem(keyBag.key));
  const chain = certBags.filter((b) => b.cert).map((b) => new X509Certificate(forge.pki.certificateToPem(b.cert!)));
  if (chain.length === 0) throw bad('The PKCS#12 content holds no certificate.');
  return withLeaf(key, chain);
}

function parsePfxWithOpenssl(base64: string, password: string): ParsedCertificate {
  let pem: string;
  try {
    pem = openssl(
      ['pkcs12', '-in', 'in.p12', '-nodes', '-passin', 'env:PFX_PASSWORD'],
      { 'in.p12': Buffer.from(base64, 'base64') },
      { PFX_PASSWORD: password },
    );
  } catch (e) {
    throw bad(
      `The PKCS#12 content could not be read (wrong password, or not PKCS#12): ${(e as Error).message.split('\n')[0]}`,
    );
  }
  return parsePem(pem, undefined);
}

function withLeaf(key: KeyObject, chain: X509Certificate[]): ParsedCertificate {
  const leaf = chain.find((c) => c.checkPrivateKey(key));
  if (!leaf) throw bad('None of the certificates matches the private key.');
  return { key, chain, leaf };
}

/** Runs openssl on files in a private temporary folder; returns its standard output, or the named output file. */
function openssl(
  args: string[],
  files: Record<string, Buffer | string>,
  env: Record<string, string>,
  outFile: string,
): Buffer;
function openssl(args: string[], files: Record<string, Buffer | string>, env?: Record<string, string>): string;
function openssl(
  args: string[],
  files: Record<string, Buffer | string>,
  env: Record<string, string> = {},
  outFile?: string,
): Buffer | string {
  const dir = mkdtempSync(join(tmpdir(), 'kv-openssl-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });
    const stdout = execFileSync('openssl', args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
    return outFile ? readFileSync(join(dir, outFile)) : stdout.toString('utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The backing secret's value, in the content type the policy asks for. */
export function backingSecretValue(p: ParsedCertificate, contentType: string): string {
  if (contentType === PEM_TYPE) {
    const keyPem = p.key.export({ type: 'pkcs8', format: 'pem' }).toString();
    return keyPem + p.chain.map((c) => c.toString()).join('');
  }
  if (p.key.asymmetricKeyType !== 'rsa') {
    // Same algorithms as the RSA path below, and the empty password Key Vault serves PFX with.
    const keyPem = p.key.export({ type: 'pkcs8', format: 'pem' }).toString();
    const der = execPfxExport(keyPem, p.chain);
    return der.toString('base64');
  }
  const forgeKey = forge.pki.privateKeyFromPem(p.key.export({ type: 'pkcs1', format: 'pem' }).toString());
  const certs = p.chain.map((c) => forge.pki.certificateFromPem(c.toString()));
  // Key Vault serves the PFX protected by an empty password.
  const asn1 = forge.pkcs12.toPkcs12Asn1(forgeKey, certs, '', { algorithm: '3des' });
  return forge.util.encode64(forge.asn1.toDer(asn1).getBytes());
}

function execPfxExport(keyPem: string, chain: X509Certificate[]): Buffer {
  return openssl(
    [
      'pkcs12',
      '-export',
      '-inkey',
      'key.pem',
      '-in',
      'chain.pem',
      '-passout',
      'pass:',
      '-keypbe',
      'PBE-SHA1-3DES',
      '-certpbe',
      'PBE-SHA1-3DES',
      '-macalg',
      'sha1',
      '-out',
      'out.p12',
    ],
    { 'key.pem': keyPem, 'chain.pem': chain.map((c) => c.toString()).join('') },
    {},
    'out.p12',
  );
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
