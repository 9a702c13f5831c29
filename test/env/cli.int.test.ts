// `npm run stack -- up` stopped with Ctrl-C leaves nothing behind: its processes are gone and so is
// etcd's data folder in /dev/shm (124 MB was left there when the default signal handler exited
// before the stack's own stop ran).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './control-plane.js';
import { waitUntil } from './processes.js';

const etcdFolders = (pid: number) =>
  existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(`sss-etcd-${pid}-`)) : [];

test('Ctrl-C on `stack up` stops the stack and removes its etcd data folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-cli-'));
  // Its own process group, as a terminal gives it: Ctrl-C signals the whole group.
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'env', 'cli.ts'), 'up', dir], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitUntil('`stack up` to be ready', async () => out.includes('Ctrl-C stops it.'), { timeoutMs: 60_000 });
  expect(etcdFolders(child.pid!)).toHaveLength(1);
  process.kill(-child.pid!, 'SIGINT');
  expect(await exited).toBe(0);
  expect(etcdFolders(child.pid!)).toEqual([]);
});
