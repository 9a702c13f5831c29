// The stack's throw-away PKI: one CA per run, and leaf certificates for the apiserver, the admin
// client, the Entra stand-in and the Key Vault emulator. node-forge builds the X.509 structures;
// Node's crypto makes the keys (much faster than forge's pure-JS RSA).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface KeyPairPem {
  key: string;
  cert: string;
}

export interface Ca extends KeyPairPem {
  issue(opts: LeafOptions): KeyPairPem;
  /** An intermediate CA signed by this one. */
  issueCa(commonName: string): Ca;
}

export interface LeafOptions {
  commonName: string;
  organization?: string;
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client';
  days?: number;
}

function rsaKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function baseCert(publicPem: string, days: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // Positive serial: a leading 0x00-0x7f byte.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  return cert;
}

export function createCa(
  commonName = 'secret-store-sync test CA',
  days = 30,
  parent?: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey },
): Ca {
  const k = rsaKey();
  const cert = baseCert(k.publicPem, days);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(parent ? parent.cert.subject.attributes : subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    ...(parent
      ? [{ name: 'authorityKeyIdentifier', keyIdentifier: parent.cert.generateSubjectKeyIdentifier().getBytes() }]
      : []),
  ]);
  const caKey = forge.pki.privateKeyFromPem(k.privatePem);
  cert.sign(parent?.key ?? caKey, forge.md.sha256.create());
  const caCertPem = forge.pki.certificateToPem(cert);

  return {
    key: k.privatePem,
    cert: caCertPem,
    issueCa(name: string): Ca {
      return createCa(name, days, { cert, key: caKey });
    },
    issue(opts: LeafOptions): KeyPairPem {
      const lk = rsaKey();
      const leaf = baseCert(lk.publicPem, opts.days ?? days);
      const subj: forge.pki.CertificateField[] = [{ name: 'commonName', value: opts.commonName }];
      if (opts.organization) subj.push({ name: 'organizationName', value: opts.organization });
      leaf.setSubject(subj);
      leaf.setIssuer(cert.subject.attributes);
      const altNames = [
        ...(opts.dnsNames ?? []).map((value) => ({ type: 2, value })),
        ...(opts.ips ?? []).map((ip) => ({ type: 7, ip })),
      ];
      const exts: object[] = [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        opts.usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
        { name: 'authorityKeyIdentifier', keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes() },
      ];
      if (altNames.length > 0) exts.push({ name: 'subjectAltName', altNames });
      leaf.setExtensions(exts);
      leaf.sign(caKey, forge.md.sha256.create());
      return { key: lk.privatePem, cert: forge.pki.certificateToPem(leaf) };
    },
  };
}

/** An RSA key pair for the service-account token signer. */
export function signingKey(): { key: string; pub: string } {
  const k = rsaKey();
  return { key: k.privatePem, pub: k.publicPem };
}
