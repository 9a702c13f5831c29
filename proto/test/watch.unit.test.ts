// `provider-kit watch` as an operator runs it against a live provider: one line per state and
// notice, safe to print whatever the provider sends, and an exit code that says whether the
// stream was there.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ChangeListener, type ChangeSource } from '../src/index.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'kit-watch-'));

beforeAll(() => {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-b', join(root, 'proto')], { cwd: root });
});

function provider(name: string, changes?: ChangeSource) {
  return serve(
    {
      runtimeName: 'watched',
      runtimeVersion: '0',
      mount: () =>
        Promise.resolve({ files: [{ path: 'a', contents: 'x' }], objectVersions: [{ id: 'a', version: '1' }] }),
      ...(changes ? { changes } : {}),
    },
    { endpoint: `unix://${join(dir, `${name}.sock`)}`, shutdownGraceMs: 1_000 },
  );
}

/** Starts `provider-kit watch` and gathers its output lines and its exit code. */
function watchCli(socket: string) {
  const child: ChildProcess = spawn(process.execPath, [
    join(root, 'proto', 'dist', 'cli.js'),
    'watch',
    '--socket',
    `unix://${socket}`,
  ]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const raw = () => out.split('\n').filter(Boolean);
  const lines = () => raw().map((l) => l.replace(/^\S+ /, ''));
  return { child, raw, lines, exit };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

test('prints the state and each notice until interrupted, with what the provider sent made printable', async () => {
  const listeners = new Set<ChangeListener>();
  const source: ChangeSource = {
    current: () => ({ receiving: true }),
    watch: (l) => (listeners.add(l), () => listeners.delete(l)),
  };
  const running = await provider('live', source);
  const w = watchCli(running.socket);
  try {
    await until(() => listeners.size === 1, 'the watch to attach');
    for (const l of listeners) {
      l.changed({ keys: ['k1', 'k2'], kind: 'NewVersion' });
      l.state({ receiving: false, reason: 'QueueUnreachable', message: 'connect\u001b[2J refused' });
    }
    await until(() => w.lines().length === 3, 'three lines');
    expect(w.lines()).toEqual([
      'state receiving',
      'changed NewVersion k1 k2',
      'state not receiving QueueUnreachable: connect?[2J refused',
    ]);
    // Each line starts with the time it arrived.
    for (const l of w.raw()) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
    w.child.kill('SIGINT');
    expect(await w.exit).toBe(0);
  } finally {
    w.child.kill();
    await running.stop();
  }
});

test('says when the provider serves no change notices, or its stream ends, and exits 1', async () => {
  const plain = await provider('plain');
  const none = watchCli(plain.socket);
  expect(await none.exit).toBe(1);
  expect(none.lines()).toEqual(['change notices: not served (callers poll)']);
  await plain.stop();

  const listeners = new Set<ChangeListener>();
  const running = await provider('stopping', {
    current: () => ({ receiving: true }),
    watch: (l) => (listeners.add(l), () => listeners.delete(l)),
  });
  const w = watchCli(running.socket);
  await until(() => listeners.size === 1, 'the watch to attach');
  await running.stop();
  expect(await w.exit).toBe(1);
  expect(w.lines()).toEqual(['state receiving', 'the stream failed: UNAVAILABLE: the provider is shutting down']);
});

test('without --socket it is a usage error', () => {
  const r = spawnSync(process.execPath, [join(root, 'proto', 'dist', 'cli.js'), 'watch'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^provider-kit: watch: give the provider with --socket unix:\/\/\/path\/provider\.sock/);
});
