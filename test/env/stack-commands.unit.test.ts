// `npm run stack`: `--help` describes every command the CLI takes, and the README shows each.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './control-plane.js';
import { parseStackArgs, STACK_COMMANDS, stackUsage } from './stack-commands.js';

const commands = Object.keys(STACK_COMMANDS);

test('`stack --help` prints every command with a description, and exits 0', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'env', 'cli.ts'), '--help'], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  expect(r.stdout.trim()).toBe(stackUsage());
  for (const name of commands) {
    expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b.*\\n {6}\\S`, 'm'));
  }
  expect(commands.sort()).toEqual(['build', 'down', 'up']);
});

test('the CLI takes what the table says, and says what is wrong otherwise', () => {
  expect(parseStackArgs([])).toEqual({ command: 'up' });
  expect(parseStackArgs(['up', '/tmp/s'])).toEqual({ command: 'up', dir: '/tmp/s' });
  expect(parseStackArgs(['down', '/tmp/s'])).toEqual({ command: 'down', dir: '/tmp/s' });
  expect(parseStackArgs(['build'])).toEqual({ command: 'build' });
  for (const help of [['--help'], ['-h'], ['help'], ['down', '--help']])
    expect(parseStackArgs(help)).toEqual({ command: 'help' });
  expect(parseStackArgs(['down'])).toEqual({ error: 'down needs <dir>' });
  expect(parseStackArgs(['build', 'x'])).toEqual({ error: 'build takes no arguments, got: x' });
  expect(parseStackArgs(['start'])).toEqual({ error: "unknown command 'start' (up | down | build | --help)" });
});

test('`--kube-version` picks the release for up and build, in either spelling', () => {
  expect(parseStackArgs(['up', '--kube-version', '1.27'])).toEqual({ command: 'up', kubeVersion: '1.27' });
  expect(parseStackArgs(['--kube-version=1.30', 'up', '/tmp/s'])).toEqual({
    command: 'up',
    dir: '/tmp/s',
    kubeVersion: '1.30',
  });
  expect(parseStackArgs(['build', '--kube-version', '1.27.16'])).toEqual({ command: 'build', kubeVersion: '1.27.16' });
  expect(parseStackArgs(['up', '--kube-version'])).toEqual({ error: '--kube-version needs a version, e.g. 1.27' });
  expect(parseStackArgs(['down', '/tmp/s', '--kube-version', '1.27'])).toEqual({
    error: 'down takes no --kube-version',
  });
  expect(stackUsage()).toContain('--kube-version <v>');
});

test('the README shows each command of `npm run stack`', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  for (const name of [...commands, '--help']) expect(readme).toMatch(new RegExp(`npm run stack -- ${name}\\b`));
});
