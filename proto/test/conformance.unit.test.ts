// The conformance suite passes the example provider and fails a broken one with clear lines;
// advice (good practice the protocol does not require) never fails a run.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, runConformance } from '../src/conformance.js';
import { editState } from './fixtures/edit-state.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const tsx = (file: string, ...args: string[]) => [process.execPath, '--import', 'tsx', file, ...args];
const cli = (args: string[]) =>
  spawnSync(process.execPath, [join(root, 'proto', 'dist', 'cli.js'), ...args], { cwd: root, encoding: 'utf8' });

// The example imports the kit by its package name, which resolves to proto/dist; the CLI runs from there too.
beforeAll(() => {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-b', join(root, 'proto')], { cwd: root });
});

test('the example file provider passes every check, shutdown, size limit and change notices included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'conf-'));
  const state = join(dir, 'files.json');
  writeFileSync(
    state,
    JSON.stringify({ files: { 'small/a': 'one', 'small/b/0': 'two', 'big/blob': 'x'.repeat(5 * 1024 * 1024) } }),
  );
  const results = await runConformance({
    command: tsx(join(root, 'proto', 'examples', 'file-provider.ts'), '--endpoint', '{endpoint}', '--state', state),
    fixture: {
      valid: { attributes: { prefix: 'small/' } },
      large: { attributes: { prefix: 'big/' } },
      invalid: [{ name: 'two parameters it does not know', attributes: { a: '1', b: '2' } }],
      change: { command: editState(state, 'small/a', 'one, rotated') },
    },
  });
  const lines: string[] = [];
  const ok = report(results, (l) => lines.push(l));
  expect(lines.at(-1)).toBe('18 passed, 0 failed, 0 skipped');
  expect(lines.slice(0, -1).filter((l) => !l.startsWith('ok'))).toEqual([
    '',
    'Advice (good practice, not a rule of the protocol; never fails the run):',
    '',
  ]);
  expect(lines).toContain('ok   an unknown parameter is refused: INVALID_ARGUMENT');
  expect(lines).toContain('ok   change notices: Watch answers with a State first: receiving');
  expect(lines).toContain(
    'ok   the optional change-keys trailer, when sent, maps returned object version ids to keys: 2 of 3 objects have a change key',
  );
  expect(lines).toContainEqual(
    expect.stringMatching(
      /^ok {3}change notices: a change yields a notice naming the key the Mount gave: a Changed \(NewVersion\) named '[0-9a-f]{16}' \d+ ms after the change$/,
    ),
  );
  expect(ok).toBe(true);
});

test('a provider that ignores unknown parameters, as upstream ones do, passes with the advice shown apart', async () => {
  const results = await runConformance({
    // {socket} is the bare path (vault-csi-provider's -endpoint takes one); this provider wants a URL.
    command: tsx(join(here, 'fixtures', 'lenient-provider.ts'), 'unix://{socket}'),
    fixture: { valid: { attributes: { objectName: 'a' } } },
  });
  const lines: string[] = [];
  expect(report(results, (l) => lines.push(l))).toBe(true);
  expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
  const adviceAt = lines.indexOf('Advice (good practice, not a rule of the protocol; never fails the run):');
  expect(adviceAt).toBeGreaterThan(0);
  expect(lines[adviceAt + 1]).toMatch(/^note an unknown parameter is refused: the provider accepted it: a misspelt/);
  // It does not serve change notices: that passes, and its callers poll.
  expect(lines).toContain('ok   change notices: not served (callers poll)');
  expect(lines.at(-1)).toBe('10 passed, 0 failed, 1 skipped, 1 advice not followed');
});

test('a provider killed by a signal is reported as killed by it', async () => {
  const results = await runConformance({
    command: tsx(join(here, 'fixtures', 'lenient-provider.ts'), '{endpoint}', '--die-on-mount'),
    fixture: { valid: { attributes: {} } },
    timeoutMs: 3_000,
  });
  const details = results.filter((r) => !r.ok).map((r) => r.detail);
  expect(details).toContain('the provider was killed by SIGKILL before this check');
  expect(details.join('\n')).not.toMatch(/code null/);
});

test('a broken provider fails, and each failure says what is wrong', async () => {
  const results = await runConformance({
    command: tsx(join(here, 'fixtures', 'broken-provider.ts'), '{endpoint}'),
    fixture: { valid: { attributes: {} } },
    timeoutMs: 3_000,
  });
  const failed = Object.fromEntries(results.filter((r) => !r.ok).map((r) => [r.name, r.detail]));
  expect(failed['a valid Mount returns files and object versions']).toContain(
    'object version with an empty id or version',
  );
  expect(failed['file paths are relative, without "..", unique']).toContain("unsafe path '../escape'");
  expect(failed['malformed attributes are refused with an error, not a crash or a hang']).toBeDefined();
  expect(failed['the optional expiry trailer, when sent, maps object version ids to RFC 3339 times']).toContain(
    '1 entries of the x-provider-object-expiry trailer are not an object id with an RFC 3339 time',
  );
});

test('the CLI prints one line per check and exits non-zero on failure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conf-cli-'));
  writeFileSync(join(dir, 'fixture.json'), JSON.stringify({ valid: { attributes: {} } }));
  const r = cli([
    'conformance',
    '--command',
    `${process.execPath} --import tsx ${join(here, 'fixtures', 'broken-provider.ts')} {endpoint}`,
    '--fixture',
    join(dir, 'fixture.json'),
    '--timeout-ms',
    '3000',
  ]);
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/^FAIL file paths are relative, without "\.\.", unique: unsafe path '\.\.\/escape'$/m);
  expect(r.stdout).toMatch(/^\d+ passed, \d+ failed, \d+ skipped$/m);
});

test('the CLI starts the command after -- with its arguments as given, spaces kept, and exits 0 on advice alone', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'conf-argv-')), 'my provider');
  mkdirSync(dir);
  // A link, so the example still finds the kit by its package name from the repository.
  symlinkSync(join(root, 'proto', 'examples', 'file-provider.ts'), join(dir, 'file provider.ts'));
  writeFileSync(join(dir, 'the files.json'), readFileSync(join(root, 'proto', 'examples', 'files.json')));
  const example = cli([
    'conformance',
    '--fixture',
    join(root, 'proto', 'examples', 'fixture.json'),
    '--',
    process.execPath,
    '--import',
    'tsx',
    join(dir, 'file provider.ts'),
    '--endpoint',
    '{endpoint}',
    '--state',
    join(dir, 'the files.json'),
  ]);
  expect(example.stdout).toMatch(/^ok {3}a valid Mount returns files and object versions: 3 files/m);
  expect(example.status).toBe(0);

  const lenient = cli([
    'conformance',
    '--fixture',
    join(root, 'proto', 'examples', 'fixture.json'),
    '--',
    ...tsx(join(here, 'fixtures', 'lenient-provider.ts'), '{endpoint}'),
  ]);
  expect(lenient.stdout).toMatch(/^note an unknown parameter is refused: the provider accepted it/m);
  // The example fixture's own `invalid` case is a rule: the lenient provider accepts it and fails.
  expect(lenient.stdout).toMatch(/^FAIL invalid input is refused: a parameter the provider does not know/m);
  expect(lenient.status).toBe(1);
});

test('--help and --version answer, and a usage error says what is wrong', () => {
  const help = cli(['--help']);
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: provider-kit conformance --fixture fixture.json \[options\] -- <command>/);
  const version = cli(['--version']);
  expect(version.status).toBe(0);
  expect(version.stdout.trim()).toBe(
    (JSON.parse(readFileSync(join(root, 'proto', 'package.json'), 'utf8')) as { version: string }).version,
  );
  const bad = cli(['conformance', '--fixture', join(root, 'proto', 'examples', 'fixture.json')]);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/^provider-kit: give the provider: a command after --, --command, or --socket/);
});
