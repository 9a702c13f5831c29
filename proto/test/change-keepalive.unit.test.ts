// A change stream has no deadline, so a provider that hangs with its socket open (stopped,
// wedged) must not leave the caller believing notices still come: HTTP/2 pings find it and the
// stream fails, as it does when a provider exits, so the caller reports it and reconnects.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status } from '@grpc/grpc-js';
import { ProviderClient, type ChangeState } from '../src/index.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

// The example imports the kit by its package name, which resolves to proto/dist.
beforeAll(() => {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-b', join(root, 'proto')], { cwd: root });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

test('a provider that stops answering with its socket open ends the stream with UNAVAILABLE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-keepalive-'));
  const state = join(dir, 'files.json');
  const socket = join(dir, 'p.sock');
  writeFileSync(state, JSON.stringify({ files: { a: 'one' } }));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'proto', 'examples', 'file-provider.ts'),
      '--endpoint',
      `unix://${socket}`,
      '--state',
      state,
    ],
    { stdio: 'ignore' },
  );
  const client = new ProviderClient(`unix://${socket}`, { changeKeepalive: { timeMs: 500, timeoutMs: 1_000 } });
  try {
    await until(() => existsSync(socket), 'the provider socket');
    const states: ChangeState[] = [];
    const ctl = new AbortController();
    const done = client.watchChanges({
      signal: ctl.signal,
      onState: (s) => states.push(s),
      onChanged: () => undefined,
    });
    await until(() => states.length === 1, 'the first State');
    // Alive and answering pings: the stream stays open for several ping intervals.
    const outcome = await Promise.race([
      done.then(
        () => 'ended',
        () => 'failed',
      ),
      new Promise((r) => setTimeout(() => r('open'), 3_000)),
    ]);
    expect(outcome).toBe('open');
    child.kill('SIGSTOP');
    // Bounded here, so that the `finally` below wakes and ends the stopped child even if it never fails.
    const bound = new Promise((_, reject) => setTimeout(() => reject(new Error('the stream stayed open')), 30_000));
    await expect(Promise.race([done, bound])).rejects.toMatchObject({ code: status.UNAVAILABLE });
  } finally {
    client.close();
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}, 60_000);
