// The optional change-notice service, end to end over a unix socket: a provider serving a
// ChangeSource through `serve`, and the ProviderClient the manager uses. What a caller relies on:
// a State first, every notice after it, change keys named at Mount time, UNIMPLEMENTED from a
// provider without notices (so the caller knows to poll), streams ended by the provider's stop,
// and nothing a provider sends growing without bound on either side.
import { Metadata, Server, ServerCredentials, status, type ServerWritableStream } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHANGE_KEYS_METADATA_KEY,
  MAX_KEYS_PER_NOTICE,
  ProviderClient,
  changesService,
  serve,
  type ChangeListener,
  type ChangeNotice,
  type ChangeSource,
  type ChangeState,
  type MountResult,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sss-changes-'));
const request = { attributes: '{}', secrets: 'null', permission: '420' };

/** A source whose listeners the test can see and drive. */
class TestSource implements ChangeSource {
  readonly listeners = new Set<ChangeListener>();
  state: ChangeState = { receiving: true };
  current() {
    return this.state;
  }
  watch(l: ChangeListener) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(n: ChangeNotice) {
    for (const l of this.listeners) l.changed(n);
  }
  setState(s: ChangeState) {
    this.state = s;
    for (const l of this.listeners) l.state(s);
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

function startProvider(name: string, opts: { changes?: ChangeSource; result?: MountResult }) {
  const result: MountResult = opts.result ?? { files: [{ path: 'a', contents: 'x' }], objectVersions: [] };
  return serve(
    {
      runtimeName: 'test',
      runtimeVersion: '0',
      mount: () => Promise.resolve(result),
      ...(opts.changes ? { changes: opts.changes } : {}),
    },
    { endpoint: `unix://${join(dir, `${name}.sock`)}`, shutdownGraceMs: 60_000 },
  );
}

function watch(client: ProviderClient) {
  const events: ({ state: ChangeState } | { changed: ChangeNotice })[] = [];
  const ctl = new AbortController();
  const done = client.watchChanges({
    signal: ctl.signal,
    onState: (state) => events.push({ state }),
    onChanged: (changed) => events.push({ changed }),
  });
  return { events, ctl, done };
}

test('a watcher gets the state first, then every notice and state change, until it stops watching', async () => {
  const source = new TestSource();
  source.state = { receiving: false, reason: 'QueueUnreachable', message: 'connect ECONNREFUSED' };
  const provider = await startProvider('watch', { changes: source });
  const client = new ProviderClient(`unix://${provider.socket}`);
  try {
    const w = watch(client);
    await until(() => source.listeners.size === 1, 'the watcher to attach');
    source.setState({ receiving: true });
    source.emit({ keys: ['k1', 'k2'], kind: 'NewVersion' });
    await until(() => w.events.length === 3, 'three events');
    expect(w.events).toEqual([
      { state: { receiving: false, reason: 'QueueUnreachable', message: 'connect ECONNREFUSED' } },
      { state: { receiving: true } },
      { changed: { keys: ['k1', 'k2'], kind: 'NewVersion' } },
    ]);
    w.ctl.abort();
    await w.done;
    // The source is told, so it can stop pulling its store while nobody listens.
    await until(() => source.listeners.size === 0, 'the listener to detach');
  } finally {
    client.close();
    await provider.stop();
  }
});

test('a large notice arrives whole, in messages of at most MAX_KEYS_PER_NOTICE keys; invalid keys are dropped', async () => {
  const source = new TestSource();
  const provider = await startProvider('split', { changes: source });
  const client = new ProviderClient(`unix://${provider.socket}`);
  try {
    const w = watch(client);
    await until(() => source.listeners.size === 1, 'the watcher to attach');
    const keys = Array.from({ length: MAX_KEYS_PER_NOTICE * 2 + 5 }, (_, i) => `key-${i}`);
    source.emit({ keys: [...keys, 'has space', '', 'x'.repeat(129)], kind: 'NewVersion' });
    await until(() => w.events.length === 4, 'the state and three notices');
    const got = w.events.flatMap((e) => ('changed' in e ? [e.changed.keys] : []));
    expect(got.map((k) => k.length)).toEqual([MAX_KEYS_PER_NOTICE, MAX_KEYS_PER_NOTICE, 5]);
    expect(got.flat()).toEqual(keys);
    w.ctl.abort();
    await w.done;
  } finally {
    client.close();
    await provider.stop();
  }
});

test('a provider without change notices answers UNIMPLEMENTED, so the caller knows to poll', async () => {
  const provider = await startProvider('none', {});
  const client = new ProviderClient(`unix://${provider.socket}`);
  try {
    const w = watch(client);
    await expect(w.done).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
  } finally {
    client.close();
    await provider.stop();
  }
});

test("the provider's stop ends open streams with UNAVAILABLE instead of waiting for them", async () => {
  const source = new TestSource();
  const provider = await startProvider('stop', { changes: source });
  const client = new ProviderClient(`unix://${provider.socket}`);
  try {
    const w = watch(client);
    await until(() => source.listeners.size === 1, 'the watcher to attach');
    // The grace is 60 s, past the test's timeout: a stop that waited for the stream fails the test.
    const ended = expect(w.done).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await provider.stop();
    await ended;
    expect(source.listeners.size).toBe(0);
  } finally {
    client.close();
  }
});

test('change keys named at Mount time reach the caller; an invalid one fails the Mount at the provider', async () => {
  const good = await startProvider('keys', {
    changes: new TestSource(),
    result: {
      files: [{ path: 'a', contents: 'x' }],
      objectVersions: [{ id: 'secret/a', version: 'v1' }],
      changeKeys: { 'secret/a': 'kv:3f9a' },
    },
  });
  const bad = await startProvider('badkeys', {
    result: { files: [{ path: 'a', contents: 'x' }], objectVersions: [], changeKeys: { 'secret/a': 'has space' } },
  });
  const c1 = new ProviderClient(`unix://${good.socket}`);
  const c2 = new ProviderClient(`unix://${bad.socket}`);
  try {
    const res = await c1.mount(request);
    expect(res.changeKeys).toEqual({ keys: { 'secret/a': 'kv:3f9a' }, dropped: 0 });
    await expect(c2.mount(request)).rejects.toMatchObject({ code: status.INTERNAL, reason: 'MalformedTrailer' });
  } finally {
    c1.close();
    c2.close();
    await good.stop();
    await bad.stop();
  }
});

test('a hostile provider: bad keys in a trailer are dropped and counted, and a notice cannot flood the caller', async () => {
  const path = join(dir, 'hostile.sock');
  const server = new Server();
  server.addService(changesService, {
    Watch(call: ServerWritableStream<unknown, unknown>) {
      call.write({ state: { receiving: true } });
      call.write({ changed: { keys: Array.from({ length: 5000 }, (_, i) => `k${i}`), kind: 'x'.repeat(500) } });
      call.end();
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  const client = new ProviderClient(`unix://${path}`);
  try {
    const w = watch(client);
    await w.done;
    const notices = w.events.flatMap((e) => ('changed' in e ? [e.changed] : []));
    expect(notices).toHaveLength(1);
    expect(notices[0]!.keys).toHaveLength(MAX_KEYS_PER_NOTICE);
    expect(notices[0]!.kind.length).toBeLessThanOrEqual(64);
  } finally {
    client.close();
    server.forceShutdown();
  }
  // The trailer side, decoded by the client as any Mount answer.
  const md = new Metadata();
  md.set(CHANGE_KEYS_METADATA_KEY, JSON.stringify({ a: 'ok', b: 'not ok', c: 7 }));
  const { decodeChangeKeys } = await import('../src/index.js');
  expect(decodeChangeKeys(String(md.get(CHANGE_KEYS_METADATA_KEY)[0]))).toEqual({ keys: { a: 'ok' }, dropped: 2 });
  expect(() => decodeChangeKeys('x'.repeat(40_000))).toThrow(expect.objectContaining({ reason: 'TrailerTooLarge' }));
});
