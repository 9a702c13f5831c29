// `npm run sandbox`'s command line: `--help` describes every option and command, and a command
// with no sandbox running says so in one line, at once, and fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';
import { parseSandboxArgs, sandboxUsage, VAULT_COMMANDS, WALKTHROUGH_OPTIONS } from './commands.js';
import { parseWhen } from './vault-commands.js';

function sandbox(dir: string, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', SSS_SANDBOX_DIR: dir },
    // The old code retried the stopped stand-in for 30 s; no answer in 20 s is a failure.
    timeout: 20_000,
  });
}

/** A port that nothing listens on any more: a sandbox that was stopped. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

test('`rotate` with no sandbox running: one line saying so, exit 1', async () => {
  const never = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  // A sandbox that ran here and stopped: its stack.json is still there, its stand-ins are gone.
  const stopped = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const port = await closedPort();
  writeFileSync(join(stopped, 'ca.crt'), '');
  writeFileSync(
    join(stopped, 'stack.json'),
    JSON.stringify({
      dir: stopped,
      caFile: join(stopped, 'ca.crt'),
      k8s: { kubeconfig: join(stopped, 'kubeconfig') },
      azure: { adminUrl: `https://127.0.0.1:${port}/_stack`, authorityHost: `https://127.0.0.1:${port}` },
    }),
  );
  for (const dir of [never, stopped]) {
    const r = sandbox(dir, 'rotate', 'Hello3');
    expect({ status: r.status, signal: r.signal, stdout: r.stdout }).toEqual({ status: 1, signal: null, stdout: '' });
    expect(r.stderr).toBe(
      `sandbox rotate: no sandbox is running in ${dir}: start one with \`npm run sandbox\` (it stays up until Ctrl-C)\n`,
    );
  }
});

test('`--help` describes every option and command; a wrong one gets the usage and exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sss-sandbox-'));
  const help = sandbox(dir, '--help');
  expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: '' });
  expect(help.stdout.trim()).toBe(sandboxUsage());
  for (const name of [...Object.keys(WALKTHROUGH_OPTIONS), ...Object.keys(VAULT_COMMANDS), '--help'])
    expect(help.stdout).toMatch(new RegExp(`^  ${name}\\b.*\\n {6}\\S`, 'm'));
  const wrong = sandbox(dir, 'rotat');
  expect(wrong.status).toBe(2);
  expect(wrong.stderr).toContain('unknown command or option: rotat');
});

test('the parser takes what the table says', () => {
  expect(parseSandboxArgs([])).toEqual({ command: 'walkthrough', once: false, pod: false, build: true });
  expect(parseSandboxArgs(['--pod', '--once'])).toEqual({ command: 'walkthrough', once: true, pod: true, build: true });
  expect(parseSandboxArgs(['--once', '--no-build'])).toMatchObject({ once: true, build: false });
  expect(parseSandboxArgs(['rotate'])).toEqual({ command: 'rotate', args: [] });
  expect(parseSandboxArgs(['rotate', 'v'])).toEqual({ command: 'rotate', args: ['v'] });
  expect(parseSandboxArgs(['rotate', 'v', 'w'])).toEqual({ error: 'rotate takes [value], got: v w' });
  expect(parseSandboxArgs(['rotate', '--help'])).toEqual({ command: 'help' });
  expect(parseSandboxArgs(['--once', '--kube-version', '1.27'])).toEqual({
    command: 'walkthrough',
    once: true,
    pod: false,
    build: true,
    kubeVersion: '1.27',
  });
  expect(parseSandboxArgs(['--kube-version'])).toEqual({ error: '--kube-version needs a version, e.g. 1.27' });
});

test('the az commands take what the table says; `expire` a date-time or a time from now', () => {
  expect(parseSandboxArgs(['disable'])).toEqual({ command: 'disable', args: [] });
  expect(parseSandboxArgs(['disable', 'abc'])).toEqual({ command: 'disable', args: ['abc'] });
  expect(parseSandboxArgs(['expire'])).toEqual({ error: 'expire takes <when> [version], got: none' });
  expect(parseSandboxArgs(['expire', '5d', 'abc'])).toEqual({ command: 'expire', args: ['5d', 'abc'] });
  expect(parseSandboxArgs(['import-cert', 'c.pem'])).toEqual({ command: 'import-cert', args: ['c.pem'] });
  const now = Date.parse('2026-12-05T12:00:00Z');
  expect(parseWhen('30m', now).toISOString()).toBe('2026-12-05T12:30:00.000Z');
  expect(parseWhen('2h', now).toISOString()).toBe('2026-12-05T14:00:00.000Z');
  expect(parseWhen('5d', now).toISOString()).toBe('2026-12-10T12:00:00.000Z');
  expect(parseWhen('2027-01-31T00:00:00Z', now).toISOString()).toBe('2027-01-31T00:00:00.000Z');
  for (const bad of ['5', 'soon', '5w', '31/01/2027', '2027-13-45'])
    expect(() => parseWhen(bad, now)).toThrow(/is neither a date-time .* nor a time from now/);
});
