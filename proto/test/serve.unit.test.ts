// The serve helper on real unix sockets: hygiene, typed errors, health, graceful stop.
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { mkdtempSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProviderClient,
  ProviderError,
  decodeExpiry,
  encodeExpiry,
  serve,
  type Provider,
  type RunningProvider,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sss-serve-'));
let n = 0;
const endpoint = () => `unix://${join(dir, `p${++n}.sock`)}`;
const running: RunningProvider[] = [];
afterAll(async () => {
  for (const r of running) await r.stop();
});

function provider(mount: Provider['mount']): Provider {
  return { runtimeName: 'test-provider', runtimeVersion: '1.2.3', mount };
}
async function start(p: Provider, ep = endpoint(), extra = {}) {
  const r = await serve(p, { endpoint: ep, ...extra });
  running.push(r);
  return { r, client: new ProviderClient(ep) };
}
const okMount: Provider['mount'] = async (req) => ({
  files: [{ path: 'echo', contents: JSON.stringify(req.attributes) }],
  objectVersions: [{ id: 'echo', version: '1' }],
});

test('Version answers v1alpha1 with the runtime name and version', async () => {
  const { client } = await start(provider(okMount));
  expect(await client.version()).toEqual({
    version: 'v1alpha1',
    runtimeName: 'test-provider',
    runtimeVersion: '1.2.3',
  });
});

test('the socket is owner-only and a stale socket file is replaced', async () => {
  const ep = endpoint();
  const path = ep.slice('unix://'.length);
  writeFileSync(path, 'stale'); // a leftover file, nobody listening
  const { r, client } = await start(provider(okMount), ep);
  expect(statSync(r.socket).mode & 0o777).toBe(0o600);
  expect(
    (await client.mount({ attributes: '{"k":"v"}', secrets: 'null', permission: '420' })).files[0]?.contents.toString(),
  ).toBe('{"k":"v"}');
});

test('a socket held by a live server is not taken over', async () => {
  const path = join(dir, 'live.sock');
  const other = createServer().listen(path);
  await new Promise((r) => other.once('listening', r));
  await expect(serve(provider(okMount), { endpoint: `unix://${path}` })).rejects.toThrow(/another server is listening/);
  other.close();
});

test('malformed attributes, secrets or permission are InvalidArgument, naming the field', async () => {
  const { client } = await start(provider(okMount));
  await expect(client.mount({ attributes: '{not json', secrets: 'null', permission: '420' })).rejects.toMatchObject({
    code: 3,
    details: expect.stringContaining('attributes is not valid JSON'),
  });
  await expect(client.mount({ attributes: '{"a":1}', secrets: 'null', permission: '420' })).rejects.toMatchObject({
    code: 3,
    details: expect.stringContaining("the value of 'a' must be a string"),
  });
  await expect(client.mount({ attributes: '{}', secrets: '[1]', permission: '420' })).rejects.toMatchObject({
    code: 3,
    details: expect.stringContaining('secrets must be a JSON object'),
  });
  await expect(client.mount({ attributes: '{}', secrets: 'null', permission: 'rw' })).rejects.toMatchObject({
    code: 3,
    details: expect.stringContaining('permission'),
  });
});

test('a ProviderError keeps its code and upstream reason across the wire', async () => {
  const { client } = await start(
    provider(async () => {
      throw new ProviderError('PermissionDenied', "vault 'kv': caller is not authorized", 'Forbidden');
    }),
  );
  await expect(client.mount({ attributes: '{}', secrets: 'null', permission: '420' })).rejects.toMatchObject({
    code: 7,
    reason: 'Forbidden',
    details: "vault 'kv': caller is not authorized",
  });
});

test('unsafe or duplicate paths from a provider are refused as Internal', async () => {
  const bad = (path: string) =>
    provider(async () => ({ files: [{ path, contents: 'x' }], objectVersions: [{ id: 'a', version: '1' }] }));
  for (const p of ['../escape', '/abs', 'a/../../b']) {
    const { client } = await start(bad(p));
    await expect(client.mount({ attributes: '{}', secrets: 'null', permission: '420' })).rejects.toMatchObject({
      code: 13,
      details: expect.stringContaining('unsafe file path'),
    });
  }
  const { client } = await start(
    provider(async () => ({
      files: [
        { path: 'a', contents: '1' },
        { path: 'a', contents: '2' },
      ],
      objectVersions: [],
    })),
  );
  await expect(client.mount({ attributes: '{}', secrets: 'null', permission: '420' })).rejects.toMatchObject({
    code: 13,
    details: expect.stringContaining('twice'),
  });
});

test('the gRPC health service answers SERVING', async () => {
  const ep = endpoint();
  await start(provider(okMount), ep);
  const Client = makeGenericClientConstructor(healthService as never, 'Health');
  const c = new Client(`unix:${ep.slice('unix://'.length)}`, credentials.createInsecure()) as unknown as {
    check: (req: object, cb: (e: Error | null, r: { status: string }) => void) => void;
  };
  const res = await new Promise<{ status: string }>((resolve, reject) =>
    c.check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  expect(res.status).toBe('SERVING');
});

test('stop lets an in-flight Mount finish, then removes the socket', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { r, client } = await start(
    provider(async () => {
      await gate;
      return { files: [{ path: 'slow', contents: 'done' }], objectVersions: [{ id: 'slow', version: '1' }] };
    }),
  );
  const pending = client.mount({ attributes: '{}', secrets: 'null', permission: '420' });
  await new Promise((res) => setTimeout(res, 100));
  expect(r.inFlight()).toBe(1);
  const stopped = r.stop();
  setTimeout(release, 200);
  expect((await pending).files[0]?.contents.toString()).toBe('done');
  await stopped;
  expect(existsSync(r.socket)).toBe(false);
});

test('stop cancels Mounts that outlive the grace period', async () => {
  const { r, client } = await start(
    provider(
      (_req, ctx) => new Promise((_res, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason))),
    ),
    endpoint(),
    { shutdownGraceMs: 300 },
  );
  const pending = client
    .mount({ attributes: '{}', secrets: 'null', permission: '420' })
    .catch((e: { code: number }) => e);
  await new Promise((res) => setTimeout(res, 100));
  const t = Date.now();
  await r.stop();
  expect(Date.now() - t).toBeLessThan(5_000);
  expect(await pending).toMatchObject({ code: expect.any(Number) });
});

test('the optional expiry trailer: sent as id → RFC 3339, read back as dates; absent when the provider sends none', async () => {
  const exp = new Date('2027-03-01T12:00:00.250Z');
  const { client } = await start(
    provider(async () => ({
      files: [{ path: 'a', contents: 'x' }],
      objectVersions: [{ id: 'secret/a', version: '1' }],
      expiresOn: { 'secret/a': exp },
    })),
  );
  const res = await client.mount({ attributes: '{}', secrets: 'null', permission: '420' });
  expect(res.expiry).toEqual({ expiresOn: { 'secret/a': new Date('2027-03-01T12:00:00Z') }, dropped: 0 });
  const { client: plain } = await start(provider(okMount));
  expect((await plain.mount({ attributes: '{}', secrets: 'null', permission: '420' })).expiry).toBeUndefined();
});

test("a caller's request for a fresh read reaches the provider; without it, none is asked", async () => {
  const asked: boolean[] = [];
  const { client } = await start(
    provider(async (req, ctx) => {
      asked.push(ctx.fresh);
      return okMount(req, ctx);
    }),
  );
  const request = { attributes: '{}', secrets: 'null', permission: '420' };
  await client.mount(request, 5_000, { fresh: true });
  await client.mount(request);
  expect(asked).toEqual([true, false]);
});

test('a malformed expiry trailer is dropped entry by entry, never fatal', () => {
  expect(decodeExpiry('{"secret/a":"2027-01-01T00:00:00Z","secret/b":"next tuesday","secret/c":42}')).toEqual({
    expiresOn: { 'secret/a': new Date('2027-01-01T00:00:00Z') },
    dropped: 2,
  });
  expect(decodeExpiry('not json')).toEqual({ expiresOn: {}, dropped: 1 });
  expect(decodeExpiry('["secret/a"]')).toEqual({ expiresOn: {}, dropped: 1 });
  expect(encodeExpiry({ 'key/k': new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 999)) })).toBe(
    '{"key/k":"2030-01-02T03:04:05Z"}',
  );
});
