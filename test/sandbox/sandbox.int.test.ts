// `npm run sandbox -- --once` is the README's main command: it must replay the guide, print its
// outputs, and leave nothing running.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';

test('the sandbox walks through the guide and prints Hello2 and Hello!', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), '--once'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, SSS_SANDBOX_DIR: dir },
      timeout: 180_000,
    },
  );
  if (r.status !== 0) throw new Error(`sandbox exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/key0}" \| base64 -d\nHello2\n/);
  expect(r.stdout).toMatch(/key1}" \| base64 -d\nHello!\n/);
  expect(r.stdout).toContain('secret-sync-name   Opaque   2');
  expect(r.stdout).toMatch(/Reason:\s+CreateSucceeded/);
  // Everything it started is gone: no process still holds files in its folder.
  const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
    encoding: 'utf8',
  }).stdout.trim();
  expect(left).toBe('');
});

test('the interactive sandbox rotates a value on request and stops cleanly on Ctrl-C', async () => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const env = { ...process.env, SSS_SANDBOX_DIR: dir };
  const sandbox = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  sandbox.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => sandbox.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 120_000;
    while (!out.includes('The sandbox is running')) {
      if (Date.now() > deadline || sandbox.exitCode !== null) throw new Error(`sandbox did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const rotate = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), 'rotate', 'Hello3'],
      { cwd: repoRoot, env, encoding: 'utf8' },
    );
    expect(rotate.status).toBe(0);
    expect(rotate.stdout).toContain(
      'az keyvault secret set --vault-name "my-kv" --name "my-secret" --value \'Hello3\'',
    );
    const read = (key: string) =>
      spawnSync(
        'bash',
        [
          '-c',
          `kubectl get secret secret-sync-name -n my-namespace -o jsonpath="{.data.my-secret-data-${key}}" | base64 -d`,
        ],
        { env: { ...env, KUBECONFIG: join(dir, 'control-plane', 'kubeconfig') }, encoding: 'utf8' },
      ).stdout;
    const until = Date.now() + 40_000;
    while (read('key0') !== 'Hello3') {
      if (Date.now() > until) throw new Error(`the rotation did not arrive; key0 = '${read('key0')}'`);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(read('key1')).toBe('Hello2');
  } finally {
    sandbox.kill('SIGINT');
    expect(await exited).toBe(0);
  }
  const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
    encoding: 'utf8',
  }).stdout.trim();
  expect(left).toBe('');
});
