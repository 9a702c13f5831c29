// The conformance suite passes the example provider and fails a broken one with clear lines.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, runConformance } from '../src/conformance.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const tsx = (file: string, ...args: string[]) => [process.execPath, '--import', 'tsx', file, ...args];

test('the example file provider passes every check, shutdown and size limit included', async () => {
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
    },
  });
  const lines: string[] = [];
  const ok = report(results, (l) => lines.push(l));
  expect(lines.join('\n')).toMatch(/^11 passed, 0 failed, 0 skipped$/m);
  expect(ok).toBe(true);
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
  execFileSync('npx', ['tsc', '-b', join(root, 'proto')], { cwd: root });
  const dir = mkdtempSync(join(tmpdir(), 'conf-cli-'));
  writeFileSync(join(dir, 'fixture.json'), JSON.stringify({ valid: { attributes: {} } }));
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'proto', 'dist', 'cli.js'),
      'conformance',
      '--command',
      `${process.execPath} --import tsx ${join(here, 'fixtures', 'broken-provider.ts')} {endpoint}`,
      '--fixture',
      join(dir, 'fixture.json'),
      '--timeout-ms',
      '3000',
    ],
    { cwd: root, encoding: 'utf8' },
  );
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/^FAIL file paths are relative, without "\.\.", unique: unsafe path '\.\.\/escape'$/m);
  expect(r.stdout).toMatch(/^\d+ passed, \d+ failed, \d+ skipped$/m);
});
