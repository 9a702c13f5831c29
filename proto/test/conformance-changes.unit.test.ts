// The conformance suite's change-notice checks flag a provider that serves ObjectChanges in a way a
// caller cannot build on: no State first, a stream that ends on its own, change keys for objects
// its Mount did not return, a change that yields no notice. Each provider here is written against
// the raw gRPC services (the kit's `serve` would not let it misbehave) and runs in this process.
import { Metadata, Server, ServerCredentials, status, type ServerWritableStream } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { report, runConformance, type CheckResult } from '../src/conformance.js';
import { CHANGE_KEYS_METADATA_KEY, changesService, providerService } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'conf-changes-'));
const STATE_FIRST = 'change notices: Watch answers with a State first';
const STAYS_OPEN = 'change notices: the stream stays open until the caller cancels';
const SECOND = 'change notices: a second, concurrent watcher gets a State first too';
const TRAILER = 'the optional change-keys trailer, when sent, maps returned object version ids to keys';
const NAMES_KEYS = 'change notices: the Mount names a change key for its objects';
const NOTICE = 'change notices: a change yields a notice naming the key the Mount gave';

type Watch = (call: ServerWritableStream<unknown, unknown>) => void;

/** A provider of one object, `secret/a`, with the given change-keys trailer and Watch. */
async function rawProvider(name: string, opts: { watch: Watch; changeKeys?: Record<string, string> }) {
  const server = new Server();
  server.addService(providerService, {
    Version: (_call: unknown, cb: (e: null, r: object) => void) =>
      cb(null, { version: 'v1alpha1', runtimeName: name, runtimeVersion: '0' }),
    Mount: (call: { request: { attributes: string } }, cb: (e: object | null, r?: object, t?: Metadata) => void) => {
      let attributes: Record<string, string>;
      try {
        attributes = JSON.parse(call.request.attributes) as Record<string, string>;
      } catch {
        return cb({ code: status.INVALID_ARGUMENT, details: 'attributes are not JSON' });
      }
      if (Object.keys(attributes).some((k) => !k.startsWith('csi.storage.k8s.io/')))
        return cb({ code: status.INVALID_ARGUMENT, details: 'unknown parameter' });
      const trailer = new Metadata();
      if (opts.changeKeys) trailer.set(CHANGE_KEYS_METADATA_KEY, JSON.stringify(opts.changeKeys));
      cb(
        null,
        {
          files: [{ path: 'a', mode: 420, contents: Buffer.from('one') }],
          objectVersion: [{ id: 'secret/a', version: '1' }],
        },
        trailer,
      );
    },
  });
  server.addService(changesService, { Watch: opts.watch });
  const socket = join(dir, `${name}.sock`);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return { endpoint: `unix://${socket}`, stop: () => server.forceShutdown() };
}

const byName = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.name, r]));
/** A change command that changes nothing: the provider has nothing to notice. */
const noop = [process.execPath, '-e', ''];

test('a provider whose first event is a Changed, whose trailer names an object it did not return, and that misses a change, fails each', async () => {
  const provider = await rawProvider('changed-first', {
    // A notice before any State, for a key no Mount named; then the stream stays open.
    watch: (call) => void call.write({ changed: { keys: ['k-other'], kind: 'NewVersion' } }),
    changeKeys: { 'secret/a': 'k-a', 'secret/gone': 'k-gone' },
  });
  try {
    const results = await runConformance({
      endpoint: provider.endpoint,
      fixture: { valid: { attributes: {} }, change: { command: noop } },
      timeoutMs: 2_000,
    });
    const r = byName(results);
    expect(r[STATE_FIRST]).toMatchObject({
      ok: false,
      detail: expect.stringContaining('the first event is a Changed, not a State'),
    });
    expect(r[SECOND]).toMatchObject({ ok: false, detail: expect.stringContaining('the first event is a Changed') });
    expect(r[STAYS_OPEN]).toMatchObject({ ok: true });
    expect(r[TRAILER]).toMatchObject({
      ok: false,
      detail: expect.stringContaining("names 'secret/gone', which is not among the object versions"),
    });
    expect(r[NOTICE]).toMatchObject({
      ok: false,
      detail: expect.stringContaining("no Changed naming 'k-a', 'k-gone' within 2000 ms of the change command"),
    });
    expect(report(results, () => undefined)).toBe(false);
  } finally {
    provider.stop();
  }
});

test('a provider whose stream ends at once, and whose Mount names no change keys, fails the first and is advised on the second', async () => {
  const provider = await rawProvider('ends', {
    watch: (call) => {
      call.write({ state: { receiving: true } });
      call.end();
    },
  });
  try {
    const results = await runConformance({
      endpoint: provider.endpoint,
      fixture: { valid: { attributes: {} } },
      timeoutMs: 2_000,
    });
    const r = byName(results);
    expect(r[STATE_FIRST]).toMatchObject({ ok: true, detail: 'receiving' });
    expect(r[STAYS_OPEN]).toMatchObject({
      ok: false,
      detail: expect.stringContaining('the stream ended on its own (OK)'),
    });
    expect(r[TRAILER]).toMatchObject({ ok: true, detail: 'not sent (optional)' });
    expect(r[NAMES_KEYS]).toMatchObject({
      ok: false,
      advice: true,
      detail: expect.stringContaining(
        'ObjectChanges is served but the valid Mount sends no x-provider-change-keys trailer',
      ),
    });
    expect(r[NOTICE]).toMatchObject({ skipped: true });
    const lines: string[] = [];
    expect(report(results, (l) => lines.push(l))).toBe(false);
    expect(lines).toContainEqual(expect.stringMatching(/^note change notices: the Mount names a change key/));
  } finally {
    provider.stop();
  }
});

test('a provider that never answers Watch fails with how long the suite waited', async () => {
  const provider = await rawProvider('silent', { watch: () => undefined, changeKeys: { 'secret/a': 'k-a' } });
  try {
    const results = await runConformance({
      endpoint: provider.endpoint,
      fixture: { valid: { attributes: {} } },
      timeoutMs: 1_000,
    });
    const r = byName(results);
    expect(r[STATE_FIRST]).toMatchObject({ ok: false, detail: 'no event within 1000 ms of the Watch' });
    // Advice is for a service that answers; this one never did.
    expect(r[NAMES_KEYS]).toBeUndefined();
    expect(r[TRAILER]).toMatchObject({ ok: true, detail: '1 of 1 objects have a change key' });
  } finally {
    provider.stop();
  }
});
