// The kit as a third party gets it: packed with `npm pack`, installed from the tarball into a
// fresh folder outside the repository, the example provider compiled there against the packed
// types and checked with the packed `provider-kit`.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Fixture } from '../src/index.js';
import { editState } from './fixtures/edit-state.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const versionOf = (pkg: string) =>
  (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
const kitVersion = (JSON.parse(readFileSync(join(root, 'proto', 'package.json'), 'utf8')) as { version: string })
  .version;

let app: string;
let packedFiles: string[];
const kitDir = () => join(app, 'node_modules', '@secret-store-sync', 'proto');
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'kit-package-'));
  // prepack builds dist first.
  const [packed] = JSON.parse(npm(['pack', '-w', 'proto', '--json', '--pack-destination', dir], root)) as {
    filename: string;
    files: { path: string }[];
  }[];
  packedFiles = packed!.files.map((f) => f.path).sort();
  app = join(dir, 'my provider');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-provider', private: true, type: 'module' }));
  // The repository's own TypeScript and Node types, so the npm cache already holds them.
  npm(
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(dir, packed!.filename),
      `typescript@${versionOf('typescript')}`,
      `@types/node@${versionOf('@types/node')}`,
    ],
    app,
  );
}, 300_000);

test('the tarball holds the built kit, its types, the proto and the example, and no sources or tests', () => {
  expect(packedFiles).toEqual(
    expect.arrayContaining([
      'package.json',
      'README.md',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli.js',
      'dist/generated/v1alpha1/MountRequest.d.ts',
      'proto/service.proto',
      'proto/changes.proto',
      'examples/file-provider.ts',
      'examples/fixture.json',
      'examples/files.json',
    ]),
  );
  expect(packedFiles.filter((f) => /^(src|test)\/|\.map$|tsbuildinfo/.test(f))).toEqual([]);
  const manifest = JSON.parse(readFileSync(join(kitDir(), 'package.json'), 'utf8')) as Record<string, unknown>;
  expect(manifest.private).toBeUndefined();
  expect(manifest.version).toBe(kitVersion);
});

test('the example provider compiles against the packed types and passes the packed conformance suite', () => {
  copyFileSync(join(kitDir(), 'examples', 'file-provider.ts'), join(app, 'provider.ts'));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        strict: true,
        noUncheckedIndexedAccess: true,
        types: ['node'],
        outDir: 'dist',
      },
      files: ['provider.ts'],
    }),
  );
  execFileSync(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: app, encoding: 'utf8' });

  // The example's fixture, plus how to change one of its files: the suite then waits for a notice.
  const state = join(app, 'files.json');
  copyFileSync(join(kitDir(), 'examples', 'files.json'), state);
  const fixture = JSON.parse(readFileSync(join(kitDir(), 'examples', 'fixture.json'), 'utf8')) as Fixture;
  writeFileSync(
    join(app, 'fixture.json'),
    JSON.stringify({ ...fixture, change: { command: editState(state, 'app/db-password', 'rotated') } }),
  );
  const kit = join(app, 'node_modules', '.bin', 'provider-kit');
  const r = spawnSync(
    kit,
    [
      'conformance',
      '--fixture',
      join(app, 'fixture.json'),
      '--',
      process.execPath,
      join(app, 'dist', 'provider.js'),
      '--endpoint',
      '{endpoint}',
      '--state',
      state,
    ],
    { cwd: app, encoding: 'utf8' },
  );
  expect(r.stdout).toMatch(/^ok {3}a valid Mount returns files and object versions: 3 files, 4 object versions$/m);
  expect(r.stdout).toMatch(/^ok {3}change notices: the stream stays open until the caller cancels: open after 1 s$/m);
  expect(r.stdout).toMatch(/^ok {3}change notices: a change yields a notice naming the key the Mount gave: a Changed/m);
  expect(r.stdout).toMatch(/^\d+ passed, 0 failed, 1 skipped$/m);
  expect(r.status).toBe(0);
});

test('the packed provider-kit answers --version and --help', () => {
  const kit = join(app, 'node_modules', '.bin', 'provider-kit');
  expect(execFileSync(kit, ['--version'], { encoding: 'utf8' }).trim()).toBe(kitVersion);
  expect(execFileSync(kit, ['--help'], { encoding: 'utf8' })).toMatch(/^usage: provider-kit conformance/);
});
