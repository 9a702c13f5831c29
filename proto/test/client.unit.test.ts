// The client against hostile providers: every byte of a trailer is input. A real grpc-js server on a
// unix socket sends what the test sets; each bad trailer must fail that one Mount with a named
// reason, never throw outside the call (which crashed the manager) or wait for the deadline.
import { Metadata, Server, ServerCredentials, type sendUnaryData } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_TRAILER_BYTES,
  OBJECT_EXPIRY_METADATA_KEY,
  PARTIAL_FAILURES_METADATA_KEY,
  ProviderClient,
  providerService,
  serve,
  type MountResponse,
  type ObjectFailure,
  type RunningProvider,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sss-client-'));
const request = { attributes: '{}', secrets: 'null', permission: '420' };
// Long enough that a working client never hits it: a Mount that waits for it fails the test.
const DEADLINE_MS = 60_000;

let trailer: Record<string, string> = {};
const server = new Server();
let client: ProviderClient;
beforeAll(async () => {
  server.addService(providerService, {
    Version: (_call: unknown, cb: sendUnaryData<unknown>) => cb(null, { version: 'v1alpha1' }),
    Mount: (_call: unknown, cb: sendUnaryData<MountResponse>) => {
      const md = new Metadata();
      for (const [k, v] of Object.entries(trailer)) md.set(k, v);
      cb(null, { objectVersion: [{ id: 'a', version: '1' }], files: [{ path: 'a', contents: Buffer.from('x') }] }, md);
    },
  });
  const path = join(dir, 'hostile.sock');
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  client = new ProviderClient(`unix://${path}`, { trailerGraceMs: 1_000 });
});
afterAll(() => {
  client.close();
  server.forceShutdown();
});

async function mountWith(t: Record<string, string>) {
  trailer = t;
  return client.mount(request, DEADLINE_MS);
}

test('a partial-failures trailer that is not a list of failures fails the Mount as MalformedTrailer', async () => {
  for (const raw of [
    '{not json',
    '{"a":1}',
    'null',
    '[null]',
    '[{"id":"x"}]',
    '[{"id":"x","code":"Bogus","message":"m"}]',
    '[{"id":"","code":"NotFound","message":"m"}]',
    '[{"id":"x","code":"NotFound","message":"m","reason":7}]',
  ]) {
    await expect(mountWith({ [PARTIAL_FAILURES_METADATA_KEY]: raw })).rejects.toMatchObject({
      code: 13,
      reason: 'MalformedTrailer',
    });
  }
  const valid: ObjectFailure[] = [
    { id: 'secret/b', code: 'NotFound', reason: 'SecretNotFound', message: 'no secret b' },
  ];
  expect((await mountWith({ [PARTIAL_FAILURES_METADATA_KEY]: JSON.stringify(valid) })).failures).toEqual(valid);
});

test('a trailer over MAX_TRAILER_BYTES fails the Mount as TrailerTooLarge', async () => {
  const big = 'x'.repeat(MAX_TRAILER_BYTES);
  await expect(
    mountWith({ [PARTIAL_FAILURES_METADATA_KEY]: JSON.stringify([{ id: 'a', code: 'NotFound', message: big }]) }),
  ).rejects.toMatchObject({ code: 13, reason: 'TrailerTooLarge' });
  await expect(mountWith({ [OBJECT_EXPIRY_METADATA_KEY]: JSON.stringify({ a: big }) })).rejects.toMatchObject({
    code: 13,
    reason: 'TrailerTooLarge',
  });
});

test('a trailer HTTP/2 drops (over 64 KiB encoded) fails the Mount as TrailerLost, and the next Mount gets a working connection', async () => {
  // 100 KiB of base64 is ~75 KiB after HPACK's Huffman coding: on today's client the Mount waited
  // for its whole deadline (and so did the next one, on the same connection).
  for (const key of [OBJECT_EXPIRY_METADATA_KEY, PARTIAL_FAILURES_METADATA_KEY]) {
    await expect(mountWith({ [key]: randomBytes(75 * 1024).toString('base64') })).rejects.toMatchObject({
      code: 13,
      reason: 'TrailerLost',
    });
    expect((await mountWith({})).objectVersion).toEqual([{ id: 'a', version: '1' }]);
  }
});

describe('the serve kit sends only trailers a client takes', () => {
  let r: RunningProvider;
  let kit: ProviderClient;
  let failures: ObjectFailure[] = [];
  let expiresOn: Record<string, Date> = {};
  beforeAll(async () => {
    const endpoint = `unix://${join(dir, 'kit.sock')}`;
    r = await serve(
      {
        runtimeName: 't',
        runtimeVersion: '1',
        mount: async () => ({
          files: [{ path: 'a', contents: 'x' }],
          objectVersions: [{ id: 'a', version: '1' }],
          failures,
          expiresOn,
        }),
      },
      { endpoint },
    );
    kit = new ProviderClient(endpoint);
  });
  afterAll(async () => {
    kit.close();
    await r.stop();
  });

  test('non-ASCII in a failure message arrives as it was (it failed the whole Mount)', async () => {
    failures = [{ id: 'secret/ключ', code: 'PermissionDenied', message: 'Zugriff verweigert für Schlüssel 🔑\u007f' }];
    expiresOn = { 'secret/ключ': new Date('2030-01-01T00:00:00Z') };
    const res = await kit.mount(request, DEADLINE_MS);
    expect(res.failures).toEqual(failures);
    expect(res.expiry).toEqual({ expiresOn, dropped: 0 });
  });

  test('many failures: the first that fit are sent, the Mount succeeds', async () => {
    failures = Array.from({ length: 1_000 }, (_, i) => ({
      id: `secret/s${i}`,
      code: 'NotFound' as const,
      message: `secret s${i} was not found: ${'m'.repeat(200)}`,
    }));
    expiresOn = {};
    const res = await kit.mount(request, DEADLINE_MS);
    expect(res.failures.length).toBeGreaterThan(0);
    expect(res.failures).toEqual(failures.slice(0, res.failures.length));
  });

  test('an expiry trailer too large to send fails the Mount at the provider, naming why', async () => {
    failures = [];
    expiresOn = Object.fromEntries(
      Array.from({ length: 1_000 }, (_, i) => [`secret/${'n'.repeat(100)}${i}`, new Date('2030-01-01T00:00:00Z')]),
    );
    await expect(kit.mount(request, DEADLINE_MS)).rejects.toMatchObject({ code: 13, reason: 'TrailerTooLarge' });
  });
});
