// Files to keys, TLS extraction, and the keyed change hash.
import { createPrivateKey } from 'node:crypto';
import type { SecretSync } from '../src/api.js';
import { Hasher, type HashInput } from '../src/hash.js';
import { mapFiles } from '../src/mapping.js';
import { SyncError } from '../src/reasons.js';
import { createCa } from '../../test/env/pki.js';
import { opensslPfx } from '../../test/helpers/pfx.js';
import { secretSync } from '../../test/helpers/fixtures.js';

const ss = (data: { sourcePath: string; targetKey: string }[], type = 'Opaque'): SecretSync =>
  secretSync({ name: 'n', namespace: 'ns', uid: 'u', spc: 'c', sa: 'sa', type, data });
const files = (o: Record<string, string>) => Object.entries(o).map(([path, c]) => ({ path, contents: Buffer.from(c) }));

test('sourcePath → targetKey, trimmed', () => {
  expect(mapFiles(ss([{ sourcePath: ' a/0 ', targetKey: ' k ' }]), files({ 'a/0': 'v' }))).toEqual({
    k: Buffer.from('v'),
  });
});

test('a missing file names the path and the files there are', () => {
  expect(() => mapFiles(ss([{ sourcePath: 'nope', targetKey: 'k' }]), files({ b: '1', a: '2' }))).toThrow(
    "sourcePath 'nope' is not among the files the provider returned (a, b)",
  );
});

test('more than 1 MiB is refused before any write', () => {
  const big = 'x'.repeat(700 * 1024);
  expect(() =>
    mapFiles(
      ss([
        { sourcePath: 'a', targetKey: 'k1' },
        { sourcePath: 'b', targetKey: 'k2' },
      ]),
      files({ a: big, b: big }),
    ),
  ).toThrow(SyncError);
});

test('kubernetes.io/tls from key + chain PEM: tls.crt holds the certificates, tls.key the key in PKCS#1', () => {
  const root = createCa('root');
  const leaf = root.issue({ commonName: 'leaf', usage: 'server' });
  const pem = leaf.key + leaf.cert + root.cert;
  const out = mapFiles(
    ss(
      [
        { sourcePath: 'c', targetKey: 'tls.crt' },
        { sourcePath: 'c', targetKey: 'tls.key' },
      ],
      'kubernetes.io/tls',
    ),
    files({ c: pem }),
  );
  expect(out['tls.crt']!.toString().match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  expect(out['tls.key']!.toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
  expect(() => mapFiles(ss([{ sourcePath: 'c', targetKey: 'cert' }], 'kubernetes.io/tls'), files({ c: pem }))).toThrow(
    "targetKey 'cert' is not allowed",
  );
  expect(() =>
    mapFiles(ss([{ sourcePath: 'c', targetKey: 'tls.crt' }], 'kubernetes.io/tls'), files({ c: pem })),
  ).toThrow('needs both tls.crt and tls.key');
});

test('kubernetes.io/tls from a base64 PKCS#12 with an EC key gives an EC PRIVATE KEY', () => {
  const b64 = opensslPfx().toString('base64');
  const out = mapFiles(
    ss(
      [
        { sourcePath: 'p', targetKey: 'tls.crt' },
        { sourcePath: 'p', targetKey: 'tls.key' },
      ],
      'kubernetes.io/tls',
    ),
    files({ p: b64 }),
  );
  expect(out['tls.key']!.toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
  expect(createPrivateKey(out['tls.key']!).asymmetricKeyType).toBe('ec');
});

test('the hash changes with any written field and with the key, never shows the value', () => {
  const base: HashInput = {
    secretSyncUid: 'u',
    type: 'Opaque',
    data: { k: Buffer.from('secret') },
    labels: {},
    annotations: {},
    forceSynchronization: '',
  };
  const h = new Hasher(Buffer.alloc(32, 1));
  const a = h.hash(base);
  expect(h.hash(base)).toBe(a);
  const changes: Partial<typeof base>[] = [
    { data: { k: Buffer.from('secreT') } },
    { data: { k2: Buffer.from('secret') } },
    { labels: { l: 'v' } },
    { annotations: { a: 'v' } },
    { type: 'kubernetes.io/tls' },
    { forceSynchronization: '1' },
    { secretSyncUid: 'v' },
  ];
  for (const change of changes) {
    expect(h.hash({ ...base, ...change })).not.toBe(a);
  }
  // Field boundaries are unambiguous: moving bytes between key and value changes the hash.
  expect(h.hash({ ...base, data: { ab: Buffer.from('c') } })).not.toBe(
    h.hash({ ...base, data: { a: Buffer.from('bc') } }),
  );
  expect(new Hasher(Buffer.alloc(32, 2)).hash(base)).not.toBe(a);
  expect(a).not.toContain(Buffer.from('secret').toString('hex'));
});
