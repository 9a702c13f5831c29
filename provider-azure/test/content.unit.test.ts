// Conversions of Key Vault content into files: chains, PKCS#12 of any key type, public keys, encodings.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa } from '../../test/env/pki.js';
import { certificateSecret, decodeSecret, orderChain, publicKeyPem, readPfx } from '../src/content.js';

const root = createCa('root');
const intermediate = root.issueCa('intermediate');
const leaf = intermediate.issue({ commonName: 'leaf', usage: 'server' });
const certs = { root: new X509Certificate(root.cert), intermediate: new X509Certificate(intermediate.cert), leaf: new X509Certificate(leaf.cert) };
const names = (list: X509Certificate[]) => list.map((c) => c.subject.replace('CN=', ''));

const permutations = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));

test.each(permutations(['root', 'intermediate', 'leaf'] as const))('chain %s, %s, %s is ordered leaf → intermediate → root', (...order) => {
  const { ordered, complete } = orderChain(order.map((n) => certs[n]));
  expect(complete).toBe(true);
  expect(names(ordered)).toEqual(['leaf', 'intermediate', 'root']);
});

test('a chain with a missing intermediate keeps its order and says it is incomplete', () => {
  const { ordered, complete } = orderChain([certs.root, certs.leaf]);
  expect(complete).toBe(false);
  expect(names(ordered)).toEqual(['root', 'leaf']);
});

test('an EC PKCS#12 (made by openssl) becomes PKCS#8 key first, then leaf → root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ecpfx-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=ec-root', '-days', '2');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=ec-leaf');
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2');
  run('pkcs12', '-export', '-inkey', 'leaf.key', '-in', 'leaf.pem', '-certfile', 'ca.pem', '-passout', 'pass:', '-out', 'bundle.p12');
  const base64 = readFileSync(join(dir, 'bundle.p12')).toString('base64');
  const files = await certificateSecret(base64, 'application/x-pkcs12', 'pem', { constructChain: true, separate: true });
  const pem = files.main.toString();
  expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  expect(createPrivateKey(pem).asymmetricKeyType).toBe('ec');
  const chain = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((c) => new X509Certificate(c));
  expect(names(chain)).toEqual(['ec-leaf', 'ec-root']);
  expect(files.crt?.toString()).toBe(chain.map((c) => c.toString()).join(''));
  expect(files.key?.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----[^]*-----END PRIVATE KEY-----\n$/);
  expect((await readPfx(base64)).keys).toHaveLength(1);
});

test('a PEM-imported certificate cannot be served as PFX', async () => {
  await expect(certificateSecret(leaf.key + leaf.cert, 'application/x-pem-file', 'pfx', { constructChain: true, separate: false })).rejects.toThrow(/imported as PEM/);
});

test('an unknown content type on a certificate secret is an error, not a guess', async () => {
  await expect(certificateSecret('x', 'text/plain', 'pem', { constructChain: true, separate: false })).rejects.toThrow(/content type 'text\/plain'/);
});

test('public keys: RSA and EC P-256/384/521 export; P-256K and oct are refused', () => {
  const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));
  const rsa = createPrivateKey(root.key).export({ format: 'jwk' });
  expect(publicKeyPem({ kty: 'RSA', n: b(rsa.n!), e: b(rsa.e!) })).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  expect(() => publicKeyPem({ kty: 'EC', crv: 'P-256K', x: new Uint8Array(32), y: new Uint8Array(32) })).toThrow('EC curve P-256K is not supported');
  expect(() => publicKeyPem({ kty: 'oct' })).toThrow('key type oct has no public key');
});

test('encodings: base64 and hex decode, bad input is an error', () => {
  expect(decodeSecret('QmFzZTY0RW5jb2RlZFN0cmluZw==', 'base64').toString()).toBe('Base64EncodedString');
  expect(decodeSecret('486578456E636F646564537472696E67', 'hex').toString()).toBe('HexEncodedString');
  expect(decodeSecret('as is', 'utf-8').toString()).toBe('as is');
  expect(() => decodeSecret('not base64!', 'base64')).toThrow('not valid base64');
  expect(() => decodeSecret('xyz', 'hex')).toThrow('not valid hex');
});
