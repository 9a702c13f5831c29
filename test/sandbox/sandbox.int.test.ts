// `npm run sandbox -- --once` is the README's main command: it must replay the guide, print its
// outputs, and leave nothing running.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';

test('the sandbox walks through the guide and prints Hello2 and Hello!', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), '--once'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, SSS_SANDBOX_DIR: dir },
    timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`sandbox exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/key0}" \| base64 -d\nHello2\n/);
  expect(r.stdout).toMatch(/key1}" \| base64 -d\nHello!\n/);
  expect(r.stdout).toContain('secret-sync-name   Opaque   2');
  expect(r.stdout).toMatch(/Reason:\s+CreateSucceeded/);
  // Everything it started is gone: no process still holds files in its folder.
  const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], { encoding: 'utf8' }).stdout.trim();
  expect(left).toBe('');
});
