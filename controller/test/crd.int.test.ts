// The SecretSync CRD accepts every valid Secret data key as targetKey and every relative path a
// provider may return as sourcePath (the upstream pattern refused a.b, x_y and certs/tls), and
// refuses what is neither — checked by the real apiserver (server-side dry run).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../src/api.js';
import { repoRoot } from '../../test/env/control-plane.js';
import { kube, tempNamespace } from '../../test/helpers/kube.js';
import { secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'crd');
});
afterAll(async () => {
  await ns?.dispose();
});

async function verdict(data: { sourcePath: string; targetKey: string }): Promise<string> {
  try {
    await k.custom.createNamespacedCustomObject({
      group: SYNC_GROUP,
      version: SYNC_VERSION,
      plural: SYNC_PLURAL,
      namespace: ns.name,
      dryRun: 'All',
      body: secretSyncBody({ name: 'probe', spc: 'spc', data: [data] }),
    });
    return 'accepted';
  } catch (e) {
    return `refused: ${String((e as { body?: string }).body ?? e)}`;
  }
}

test.each([
  ['a.b', 'a.b'],
  ['x_y', 'x_y'],
  ['certs/tls', 'tls.crt'],
  ['my-secret/0', 'my-secret-data-key0'],
  ['dir/sub/file.pem', '.hidden'],
  ['UPPER_case-1', 'A-b_c.d'],
])('accepts sourcePath %s → targetKey %s', async (sourcePath, targetKey) => {
  expect(await verdict({ sourcePath, targetKey })).toBe('accepted');
});

test.each([
  ['sourcePath', '../escape', 'k'],
  ['sourcePath', '/etc/passwd', 'k'],
  ['sourcePath', 'a//b', 'k'],
  ['sourcePath', 'a/./b', 'k'],
  ['sourcePath', 'dir/', 'k'],
  ['targetKey', 'a', 'a/b'],
  ['targetKey', 'a', '..x'],
  ['targetKey', 'a', '.'],
  ['targetKey', 'a', 'has space'],
])('refuses a bad %s (%s → %s)', async (field, sourcePath, targetKey) => {
  const v = await verdict({ sourcePath, targetKey });
  expect(v).toMatch(/^refused: /);
  expect(v).toContain(field);
});

test.each(['has space', 'a/b', '..x'])(
  'a bad targetKey (%s) is refused with what a valid Secret key is, not a regular expression',
  async (targetKey) => {
    const v = await verdict({ sourcePath: 'a', targetKey });
    expect(v).toContain(
      "must be a valid Secret key: letters, digits, '-', '_' and '.', at most 253 characters, and not '.' or starting with '..'",
    );
    expect(v).not.toContain('should match');
    expect(v).not.toContain('a-zA-Z0-9');
  },
);

test('the chart ships the same CRDs as deploy/crds', () => {
  for (const f of ['secret-sync.x-k8s.io_secretsyncs.yaml', 'secrets-store.csi.x-k8s.io_secretproviderclasses.yaml']) {
    expect(readFileSync(join(repoRoot, 'deploy', 'chart', 'secret-store-sync', 'crds', f), 'utf8')).toBe(
      readFileSync(join(repoRoot, 'deploy', 'crds', f), 'utf8'),
    );
  }
});
