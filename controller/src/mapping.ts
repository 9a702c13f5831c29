// Maps the provider's files onto the Secret's keys (sourcePath → targetKey). For
// kubernetes.io/tls, tls.crt and tls.key are cut out of PEM or PKCS#12 content.
import { errorMessage, Pkcs12CostError, withPkcs12Budget } from '@secret-store-sync/proto';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import type { SecretSync } from './api.js';
import { FAILURES } from './messages.js';
import { SyncError } from './reasons.js';

/** A Secret holds at most 1 MiB of data. */
export const MAX_SECRET_BYTES = 1024 * 1024;

export function mapFiles(ss: SecretSync, files: { path: string; contents: Buffer }[]): Record<string, Buffer> {
  const byPath = new Map(files.map((f) => [f.path, f.contents]));
  const type = ss.spec.secretObject.type || 'Opaque';
  const data: Record<string, Buffer> = {};
  for (const entry of ss.spec.secretObject.data) {
    const source = entry.sourcePath.trim();
    const key = entry.targetKey.trim();
    if (!source) throw new SyncError(FAILURES.emptySourcePath());
    if (!key) throw new SyncError(FAILURES.emptyTargetKey());
    const contents = byPath.get(source);
    if (!contents) {
      throw new SyncError(FAILURES.sourcePathMissing({ source, known: [...byPath.keys()].sort().slice(0, 20) }));
    }
    data[key] = type === 'kubernetes.io/tls' ? tlsPart(contents, key, source) : contents;
  }
  if (type === 'kubernetes.io/tls' && (!data['tls.crt'] || !data['tls.key'])) {
    throw new SyncError(FAILURES.tlsNeedsBoth());
  }
  const total = Object.entries(data).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (total > MAX_SECRET_BYTES) {
    throw new SyncError(FAILURES.secretTooLarge({ bytes: total }));
  }
  return data;
}

const CERT_RE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const KEY_RE = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[^-]+-----END (?:RSA |EC )?PRIVATE KEY-----/;

function tlsPart(contents: Buffer, key: string, source: string): Buffer {
  if (key !== 'tls.crt' && key !== 'tls.key') {
    throw new SyncError(FAILURES.tlsKeyNotAllowed({ key }));
  }
  const text = contents.toString('utf8');
  let certs: string[] = text.match(CERT_RE) ?? [];
  let keyPem = KEY_RE.exec(text)?.[0];
  if (certs.length === 0 && !keyPem) {
    try {
      ({ certs, keyPem } = fromPfx(text.trim()));
    } catch (e) {
      if (!(e instanceof Pkcs12CostError)) throw e;
      throw new SyncError(FAILURES.pkcs12Refused({ key, source, detail: e.message }));
    }
  }
  try {
    if (key === 'tls.crt') {
      if (certs.length === 0) throw new Error('no certificate found');
      return Buffer.from(certs.map((c) => new X509Certificate(c).toString()).join(''), 'utf8');
    }
    if (!keyPem) throw new Error('no private key found');
    const k = createPrivateKey(keyPem);
    return Buffer.from(
      k.export({ format: 'pem', type: k.asymmetricKeyType === 'ec' ? 'sec1' : 'pkcs1' }).toString(),
      'utf8',
    );
  } catch (e) {
    throw new SyncError(FAILURES.notCertificateAndKey({ key, detail: errorMessage(e) }));
  }
}

function fromPfx(base64: string): { certs: string[]; keyPem?: string } {
  try {
    const p12 = withPkcs12Budget(forge, () =>
      forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.decode64(base64)), ''),
    );
    const certs: string[] = [];
    let keyPem: string | undefined;
    const der = (a: forge.asn1.Asn1) => Buffer.from(forge.asn1.toDer(a).getBytes(), 'binary');
    for (const safe of p12.safeContents) {
      for (const bag of safe.safeBags) {
        if (bag.type === forge.pki.oids.certBag)
          certs.push(bag.cert ? forge.pki.certificateToPem(bag.cert) : new X509Certificate(der(bag.asn1!)).toString());
        else if (bag.key) keyPem = forge.pki.privateKeyToPem(bag.key);
        else if (bag.asn1)
          keyPem = createPrivateKey({ key: der(bag.asn1), format: 'der', type: 'pkcs8' })
            .export({ type: 'pkcs8', format: 'pem' })
            .toString();
      }
    }
    return { certs, ...(keyPem ? { keyPem } : {}) };
  } catch (e) {
    if (e instanceof Pkcs12CostError) throw e;
    return { certs: [] };
  }
}
