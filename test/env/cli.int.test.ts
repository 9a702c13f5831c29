// `npm run stack` leaves nothing behind, whether `up` is stopped with Ctrl-C or killed and cleaned
// up with `down`: its processes are gone and so is etcd's data folder in /dev/shm (124 MB was left
// there each time).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './control-plane.js';
import { waitUntil } from './processes.js';

const CLI = join(repoRoot, 'test', 'env', 'cli.ts');
const etcdFolders = (pid: number) =>
  existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(`sss-etcd-${pid}-`)) : [];
const processesIn = (dir: string) =>
  spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
    encoding: 'utf8',
  }).stdout.trim();

/** `stack up <dir>` in its own process group, as a terminal starts it, once it is ready. */
async function stackUp(dir: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'up', dir], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  await waitUntil('`stack up` to be ready', async () => out.includes('Ctrl-C stops it.'), { timeoutMs: 60_000 });
  expect(etcdFolders(child.pid!)).toHaveLength(1);
  return { pid: child.pid!, exited };
}

test('Ctrl-C on `stack up` stops the stack and removes its etcd data folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-cli-'));
  const up = await stackUp(dir);
  // Ctrl-C signals the terminal's whole foreground group.
  process.kill(-up.pid, 'SIGINT');
  expect(await up.exited).toBe(0);
  expect(etcdFolders(up.pid)).toEqual([]);
  expect(processesIn(dir)).toBe('');
});

test('`stack down` after a killed `stack up` stops its processes and removes its etcd data folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-cli-'));
  const up = await stackUp(dir);
  // Killed outright: nothing of its own runs, its children (each in a group of its own) stay.
  process.kill(up.pid, 'SIGKILL');
  expect(await up.exited).toBe('SIGKILL');
  expect(processesIn(dir)).not.toBe('');
  const down = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'down', dir], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect({ status: down.status, stderr: down.stderr }).toEqual({ status: 0, stderr: '' });
  expect(down.stdout).toMatch(/^stopped: .*etcd/m);
  expect(etcdFolders(up.pid)).toEqual([]);
  expect(processesIn(dir)).toBe('');
});
