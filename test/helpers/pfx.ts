// PKCS#12 files as real tools write them (openssl), and the same files with the key-derivation
// iteration counts a hostile tenant would choose. node-forge edits the ASN.1 only: nothing here
// derives a key, so building a file that asks for 2^31 iterations costs nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

const asn1 = forge.asn1;

/** A PFX from `openssl pkcs12 -export` with an empty password (as Key Vault serves them). */
export function opensslPfx(opts: { iter?: number; noMac?: boolean; certs?: number } = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'pfx-'));
  try {
    const run = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
    run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'k.pem',
      '-out',
      'c.pem',
      '-subj',
      '/CN=pfx',
      '-days',
      '2',
    );
    run(
      'pkcs12',
      '-export',
      '-inkey',
      'k.pem',
      '-in',
      'c.pem',
      '-passout',
      'pass:',
      '-out',
      'b.p12',
      ...(opts.iter ? ['-iter', String(opts.iter)] : []),
      ...(opts.noMac ? ['-nomac'] : []),
    );
    return readFileSync(join(dir, 'b.p12'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fromDer = (der: Buffer) => asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
const toDer = (node: forge.asn1.Asn1) => Buffer.from(asn1.toDer(node).getBytes(), 'binary');
const integer = (n: number) => asn1.integerToDer(n).getBytes();
const children = (node: forge.asn1.Asn1) => node.value as forge.asn1.Asn1[];

/** The PFX with its MAC's iteration count set to `iterations` (the 104-byte attack). */
export function withMacIterations(pfx: Buffer, iterations: number): Buffer {
  const root = fromDer(pfx);
  const macData = children(root)[2];
  if (!macData) throw new Error('the PFX has no MAC');
  children(macData)[2] = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, integer(iterations));
  return toDer(root);
}

/**
 * The PFX's plain (unencrypted) safes, each edited by `edit` (a SafeContents: a SEQUENCE of
 * SafeBags). For a file without a MAC: editing the safes breaks the MAC, which is checked first.
 */
function editPlainSafes(pfx: Buffer, edit: (safeContents: forge.asn1.Asn1) => void): Buffer {
  const root = fromDer(pfx);
  const authSafeOctets = children(children(children(root)[1]!)[1]!)[0]!;
  const authSafe = asn1.fromDer(authSafeOctets.value as string);
  for (const contentInfo of children(authSafe)) {
    if (asn1.derToOid(children(contentInfo)[0]!.value as string) !== forge.pki.oids.data!) continue;
    const octets = children(children(contentInfo)[1]!)[0]!;
    const safeContents = asn1.fromDer(octets.value as string);
    edit(safeContents);
    octets.value = asn1.toDer(safeContents).getBytes();
  }
  authSafeOctets.value = asn1.toDer(authSafe).getBytes();
  return toDer(root);
}

/** Every shrouded key bag's PBKDF2 iteration count set to `iterations` (PBES2, as OpenSSL 3 writes). */
export function withKeyBagIterations(pfx: Buffer, iterations: number): Buffer {
  return editPlainSafes(pfx, (safeContents) => {
    for (const bag of children(safeContents)) {
      if (asn1.derToOid(children(bag)[0]!.value as string) !== forge.pki.oids.pkcs8ShroudedKeyBag!) continue;
      // SafeBag → [0] → EncryptedPrivateKeyInfo → AlgorithmIdentifier → PBES2-params → KDF → PBKDF2-params
      const pbkdf2Params = children(children(children(children(children(children(bag)[1]!)[0]!)[0]!)[1]!)[0]!)[1]!;
      children(pbkdf2Params)[1] = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, integer(iterations));
    }
  });
}

/** The shrouded key bags repeated `times` times: each is one more derivation at the file's count. */
export function withKeyBagsRepeated(pfx: Buffer, times: number): Buffer {
  return editPlainSafes(pfx, (safeContents) => {
    const bags = children(safeContents).filter(
      (bag) => asn1.derToOid(children(bag)[0]!.value as string) === forge.pki.oids.pkcs8ShroudedKeyBag!,
    );
    for (let i = 1; i < times; i++) children(safeContents).push(...bags);
  });
}
