// A provider that starts after its SecretSyncs: its socket appearing is noticed (by the directory
// watch, or by the scan when the watch cannot run), and the SecretSyncs waiting for it are handed back.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderSockets, ProviderWaiters } from '../src/provider-sockets.js';

const servers: Server[] = [];
const watchers: ProviderSockets[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const w of watchers.splice(0)) w.stop();
});

const listen = (path: string) =>
  new Promise<void>((resolve) => {
    const s = createServer();
    servers.push(s);
    s.listen(path, resolve);
  });

function watching(dir: string, scanMs: number) {
  const appeared: string[] = [];
  let wake = () => {};
  const w = new ProviderSockets({
    dir,
    scanMs,
    debounceMs: 20,
    onAppear: (p) => {
      appeared.push(p);
      wake();
    },
  });
  watchers.push(w);
  w.start();
  const next = () => new Promise<void>((r) => (wake = r));
  return { appeared, next };
}

test('a socket appearing in the directory is noticed at once by the watch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sockets-'));
  await listen(join(dir, 'already.sock'));
  // A scan an hour away: only the watch can tell.
  const w = watching(dir, 3_600_000);
  const noticed = w.next();
  writeFileSync(join(dir, 'late.json'), '{}'); // not a socket name: ignored
  await listen(join(dir, 'late.sock'));
  await noticed;
  expect(w.appeared).toEqual(['late']);
});

test('where the watch cannot run (no directory yet), the periodic scan notices the socket', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sss-sockets-')), 'providers');
  const w = watching(dir, 50);
  const noticed = w.next();
  mkdirSync(dir);
  await listen(join(dir, 'late.sock'));
  await noticed;
  expect(w.appeared[0]).toBe('late');
});

test('SecretSyncs wait for one provider each; taking a provider hands them back once', () => {
  const waiters = new ProviderWaiters();
  waiters.set('ns/a', 'vault');
  waiters.set('ns/b', 'vault');
  waiters.set('ns/c', 'gcp');
  waiters.set('ns/c', 'vault'); // its class now names another provider
  waiters.set('ns/d', 'vault');
  waiters.set('ns/d', undefined); // synced, or failed otherwise
  expect(waiters.take('gcp')).toEqual([]);
  expect(waiters.take('vault')).toEqual(['ns/a', 'ns/b', 'ns/c']);
  expect(waiters.take('vault')).toEqual([]);
  expect(waiters.size).toBe(0);
});
