// The strict test provider refuses what vault-csi-provider and the CSI driver's e2e provider
// refuse — so a manager test against it fails on a request they would not take — and passes the
// conformance suite, whose requests come from the manager's own builder.
import { buildMountRequest, ProviderClient, runConformance, report } from '@secret-store-sync/proto';
import { credentials } from '@grpc/grpc-js';
import { api } from '../../proto/src/load.js';
import type { CSIDriverProviderClient } from '../../proto/src/generated/v1alpha1/CSIDriverProvider.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'strict-'));
const socket = join(dir, 'strict.sock');
const state = join(dir, 'state.json');
let child: ChildProcess;
let client: ProviderClient;

const token = {
  'api://AzureADTokenExchange': { token: 'header.payload.sig', expirationTimestamp: '2026-12-01T00:10:00Z' },
};
const good = () =>
  buildMountRequest({
    parameters: { prefix: '' },
    pod: { name: 'm', uid: 'u', namespace: 'team-a' },
    serviceAccountName: 'workload',
    tokens: token,
  });
const refusal = (req: Parameters<ProviderClient['mount']>[0]) =>
  client.mount(req, 5_000).then(
    () => 'accepted',
    (e: { code: number; details: string }) => `${e.code}: ${e.details}`,
  );

beforeAll(async () => {
  writeFileSync(state, JSON.stringify({ files: { a: 'one' } }));
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(here, 'strict-provider.ts'),
      `--endpoint=unix://${socket}`,
      `--state=${state}`,
      '--validate-tokens-audience=api://AzureADTokenExchange',
    ],
    { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
  );
  client = new ProviderClient(`unix://${socket}`);
  const deadline = Date.now() + 20_000;
  while (!(
    existsSync(socket) &&
    (await client.version(1_000).then(
      () => true,
      () => false,
    ))
  )) {
    if (Date.now() > deadline) throw new Error('strict provider did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(() => {
  client?.close();
  child?.kill('SIGKILL');
});

test("the manager's request is accepted", async () => {
  expect(await refusal(good())).toBe('accepted');
});

test.each([
  ['an empty target_path (what the manager sent before)', { targetPath: '' }, '2: missing target path'],
  ['an empty secrets field', { secrets: '' }, '2: failed to unmarshal secrets, error: '],
  [
    'an empty permission',
    { permission: '' },
    '2: failed to unmarshal file permission, error: unexpected end of JSON input',
  ],
  ['a permission that is not a JSON number', { permission: '0644x' }, '2: failed to unmarshal file permission'],
])('refuses %s, as the e2e provider and vault-csi-provider do', async (_name, change, expected) => {
  expect(await refusal({ ...good(), ...change })).toContain(expected);
});

test('refuses a Mount without tokens when it validates an audience (e2e provider, VALIDATE_TOKENS_AUDIENCE)', async () => {
  const req = buildMountRequest({
    parameters: { prefix: '' },
    pod: { name: 'm', uid: 'u', namespace: 'team-a' },
    serviceAccountName: 'workload',
  });
  expect(await refusal(req)).toBe('2: failed to validate token, error: service account tokens is not set');
});

test('refuses a Mount without the pod namespace or ServiceAccount (vault-csi-provider mints its own token with them)', async () => {
  const attributes = JSON.parse(good().attributes!) as Record<string, string>;
  delete attributes['csi.storage.k8s.io/pod.namespace'];
  expect(await refusal({ ...good(), attributes: JSON.stringify(attributes) })).toContain(
    'csi.storage.k8s.io/pod.namespace is empty',
  );
});

test('refuses a caller whose :authority is not localhost (e2e provider, every RPC)', async () => {
  // (Drivers before 8f0a14fd sent the socket path; Node's HTTP/2 refuses a '/' in it, so a name here.)
  const raw = new api.v1alpha1.CSIDriverProvider(`unix:${socket}`, credentials.createInsecure(), {
    'grpc.default_authority': 'strict.sock',
  }) as unknown as CSIDriverProviderClient;
  const err = await new Promise<{ code: number; details: string } | null>((resolve) =>
    raw.Version({ version: 'v1alpha1' }, (e) => resolve(e as never)),
  );
  raw.close();
  expect(err).toMatchObject({ code: 2, details: 'want authority localhost, got [strict.sock]' });
});

test("passes the conformance suite, whose Mounts come from the manager's request builder", async () => {
  const results = await runConformance({
    endpoint: `unix://${socket}`,
    fixture: { valid: { attributes: { prefix: '' }, tokens: { 'api://AzureADTokenExchange': 'header.payload.sig' } } },
  });
  const lines: string[] = [];
  const ok = report(results, (l) => lines.push(l));
  expect(lines.join('\n')).toMatch(/^\d+ passed, 0 failed/m);
  expect(ok).toBe(true);
});
