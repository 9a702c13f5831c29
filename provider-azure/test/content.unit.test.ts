// Conversions of Key Vault content into files: chains, PKCS#12 of any key type, public keys, encodings.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { createCa, type Ca } from '../../test/env/pki.js';
import { opensslPfx, withMacIterations } from '../../test/helpers/pfx.js';
import {
  certificateSecret,
  ContentError,
  decodeSecret,
  MAX_CHAIN_ORDERED,
  orderChain,
  publicKeyPem,
  readPfx,
} from '../src/content.js';

const root = createCa('root');
const intermediate = root.issueCa('intermediate');
const leaf = intermediate.issue({ commonName: 'leaf', usage: 'server' });
const certs = {
  root: new X509Certificate(root.cert),
  intermediate: new X509Certificate(intermediate.cert),
  leaf: new X509Certificate(leaf.cert),
};
const names = (list: X509Certificate[]) => list.map((c) => c.subject.replace('CN=', ''));

const permutations = <T>(xs: T[]): T[][] =>
  xs.length <= 1
    ? [xs]
    : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));

test.each(permutations(['root', 'intermediate', 'leaf'] as const))(
  'chain %s, %s, %s is ordered leaf → intermediate → root',
  (...order) => {
    const { ordered, complete } = orderChain(order.map((n) => certs[n]));
    expect(complete).toBe(true);
    expect(names(ordered)).toEqual(['leaf', 'intermediate', 'root']);
  },
);

test('a chain with a missing intermediate keeps its order and says it is incomplete', () => {
  const { ordered, complete } = orderChain([certs.root, certs.leaf]);
  expect(complete).toBe(false);
  expect(names(ordered)).toEqual(['root', 'leaf']);
});

test('an EC PKCS#12 (made by openssl) becomes PKCS#8 key first, then leaf → root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ecpfx-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-subj',
    '/CN=ec-root',
    '-days',
    '2',
  );
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'leaf.key',
    '-out',
    'leaf.csr',
    '-subj',
    '/CN=ec-leaf',
  );
  run(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'leaf.pem',
    '-days',
    '2',
  );
  run(
    'pkcs12',
    '-export',
    '-inkey',
    'leaf.key',
    '-in',
    'leaf.pem',
    '-certfile',
    'ca.pem',
    '-passout',
    'pass:',
    '-out',
    'bundle.p12',
  );
  const base64 = readFileSync(join(dir, 'bundle.p12')).toString('base64');
  const files = await certificateSecret(base64, 'application/x-pkcs12', 'pem', {
    constructChain: true,
    separate: true,
  });
  const pem = files.main.toString();
  expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  expect(createPrivateKey(pem).asymmetricKeyType).toBe('ec');
  const chain = pem
    .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!
    .map((c) => new X509Certificate(c));
  expect(names(chain)).toEqual(['ec-leaf', 'ec-root']);
  expect(files.crt?.toString()).toBe(chain.map((c) => c.toString()).join(''));
  expect(files.key?.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----[^]*-----END PRIVATE KEY-----\n$/);
  expect((await readPfx(base64)).keys).toHaveLength(1);
});

test('a PEM-imported certificate cannot be served as PFX', async () => {
  await expect(
    certificateSecret(leaf.key + leaf.cert, 'application/x-pem-file', 'pfx', { constructChain: true, separate: false }),
  ).rejects.toThrow(/imported as PEM/);
});

test('an unknown content type on a certificate secret is an error, not a guess', async () => {
  await expect(certificateSecret('x', 'text/plain', 'pem', { constructChain: true, separate: false })).rejects.toThrow(
    /content type 'text\/plain'/,
  );
});

test('public keys: RSA and EC P-256/384/521 export; P-256K and oct are refused', () => {
  const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));
  const rsa = createPrivateKey(root.key).export({ format: 'jwk' });
  expect(publicKeyPem({ kty: 'RSA', n: b(rsa.n!), e: b(rsa.e!) })).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  expect(() => publicKeyPem({ kty: 'EC', crv: 'P-256K', x: new Uint8Array(32), y: new Uint8Array(32) })).toThrow(
    'EC curve P-256K is not supported',
  );
  expect(() => publicKeyPem({ kty: 'oct' })).toThrow('key type oct has no public key');
});

test('encodings: base64 and hex decode, bad input is an error', () => {
  expect(decodeSecret('QmFzZTY0RW5jb2RlZFN0cmluZw==', 'base64').toString()).toBe('Base64EncodedString');
  expect(decodeSecret('486578456E636F646564537472696E67', 'hex').toString()).toBe('HexEncodedString');
  expect(decodeSecret('as is', 'utf-8').toString()).toBe('as is');
  expect(() => decodeSecret('not base64!', 'base64')).toThrow('not valid base64');
  expect(() => decodeSecret('xyz', 'hex')).toThrow('not valid hex');
});

test("a PKCS#12 asking for 2^31 - 1 MAC iterations is refused before deriving (an hour of the provider's thread before)", async () => {
  const hostile = withMacIterations(opensslPfx(), 2 ** 31 - 1).toString('base64');
  const err = await readPfx(hostile).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ContentError);
  expect((err as ContentError).message).toContain('asks for 2147483647 key-derivation iterations');
});

describe('chain ordering costs one signature check per certificate', () => {
  let verifies: number;
  const verify = X509Certificate.prototype.verify;
  beforeEach(() => {
    verifies = 0;
    jest.spyOn(X509Certificate.prototype, 'verify').mockImplementation(function (this: X509Certificate, key) {
      verifies++;
      return verify.call(this, key);
    });
  });
  afterEach(() => jest.restoreAllMocks());

  /** A root and a line of intermediates under it, each signing the next: n certificates in all. */
  function line(n: number): X509Certificate[] {
    const cas: Ca[] = [createCa('line-0')];
    while (cas.length < n) cas.push(cas.at(-1)!.issueCa(`line-${cas.length}`));
    return cas.map((ca) => new X509Certificate(ca.cert)).reverse();
  }
  const shuffled = <T>(xs: T[]) =>
    xs
      .map((x, i) => [((i * 7) % xs.length) + i / 1000, x] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, x]) => x);

  test(`a chain of ${MAX_CHAIN_ORDERED} in any order is ordered with ${MAX_CHAIN_ORDERED - 1} checks`, () => {
    const chain = line(MAX_CHAIN_ORDERED);
    const { ordered, complete } = orderChain(shuffled(chain));
    expect(complete).toBe(true);
    expect(ordered.map((c) => c.subject)).toEqual(chain.map((c) => c.subject));
    expect(verifies).toBe(MAX_CHAIN_ORDERED - 1);
  });

  test(`more than ${MAX_CHAIN_ORDERED} certificates are kept as stored, unchecked`, () => {
    const chain = shuffled(line(MAX_CHAIN_ORDERED + 1));
    expect(orderChain(chain)).toEqual({ ordered: chain, complete: false });
    expect(verifies).toBe(0);
  });

  test('same-named certificates are kept as stored, unchecked (every pair was checked before: 2 s for 45 P-384)', () => {
    const ca = createCa('same-ca');
    const bundle = Array.from(
      { length: 12 },
      () => new X509Certificate(ca.issue({ commonName: 'same', usage: 'server' }).cert),
    );
    expect(orderChain([...bundle, new X509Certificate(ca.cert)])).toMatchObject({ complete: false });
    expect(verifies).toBe(0);
  });
});
