// Expiry warnings end to end: Key Vault's `exp` and a certificate's notAfter travel from
// provider-azure in the optional expiry trailer to the SecretSync's status, its Expiring
// condition, one Warning Event per transition, the `kubectl get` column and the metric — and a
// provider that sends no trailer changes nothing.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { createCa } from '../../test/env/pki.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, occurrences, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import {
  startProvider,
  startTestProvider,
  type RunningProviderProcess,
  type TestProvider,
} from '../../test/helpers/provider.js';
import type { SecretSync } from '../src/api.js';
import { azureParameters, secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `exp-${Date.now().toString(36)}`;
const DAY = 86_400_000;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let plain: TestProvider;
let manager: RunningManager;
let clientId: string;

const kubectl = (args: string[], input?: string) =>
  execFileSync('kubectl', ['--kubeconfig', info.k8s.kubeconfig, ...args], {
    encoding: 'utf8',
    ...(input ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });

async function secretSync(name: string): Promise<SecretSync> {
  return (await k.custom.getNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    name,
  })) as SecretSync;
}
const expiring = async (name: string) =>
  (await secretSync(name)).status?.conditions?.find((c) => c.type === 'Expiring');

async function warnings(name: string, reason: string): Promise<number> {
  const list = await k.core.listNamespacedEvent({
    namespace: ns.name,
    fieldSelector: `involvedObject.name=${name},reason=${reason}`,
  });
  return occurrences(list.items.filter((e) => e.type === 'Warning'));
}

async function sync(
  name: string,
  providerName: string,
  objects: Record<string, string | number>[],
  data: { sourcePath: string; targetKey: string }[],
) {
  const parameters =
    providerName === 'azure'
      ? azureParameters({ keyvaultName: vault, tenantID: azure.tenantId, clientID: clientId, objects })
      : { prefix: 'value' };
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name, provider: providerName, parameters }),
  });
  await k.custom.createNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    body: secretSyncBody({ name, sa: 'workload', spc: name, type: 'Opaque', data }),
  });
  await eventually(
    async () =>
      (await secretSync(name)).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined,
    30_000,
    `${name} synced`,
  );
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'expiry');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  const id = await azure.createIdentity(`expiry-${ns.name}`);
  clientId = id.clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  await azure.assignRole('Key Vault Reader', clientId, vault);
  const socketDir = mkdtempSync(join(tmpdir(), 'sss-expiry-'));
  provider = await startProvider({ socketDir });
  plain = await startTestProvider('plain', socketDir);
  plain.setState({ files: { value: 'no expiry here' } });
  manager = await startManager({
    namespace: ns.name,
    providerDir: socketDir,
    args: ['--rotation-poll-interval-seconds=2'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await plain?.stop();
  await ns?.dispose();
});

test('a secret expiring in 10 days: Expiring condition, one Warning Event, the column and the metric; a later version clears it', async () => {
  const exp = new Date(Math.floor((Date.now() + 10 * DAY) / 1000) * 1000);
  await azure.secrets(vault).setSecret('db-password', 'first', { expiresOn: exp });
  await sync(
    'db',
    'azure',
    [{ objectName: 'db-password', objectType: 'secret' }],
    [{ sourcePath: 'db-password', targetKey: 'password' }],
  );

  await eventually(
    async () => ((await expiring('db'))?.reason === 'ObjectExpiring' ? true : undefined),
    30_000,
    'the Expiring condition',
  );
  const st = (await secretSync('db')).status!;
  expect(st.expiresOn).toBe(exp.toISOString().replace('.000Z', 'Z'));
  expect(st.syncedObjectVersions?.[0]).toMatchObject({ id: 'secret/db-password', expiresOn: st.expiresOn });
  expect(await expiring('db')).toMatchObject({
    status: 'True',
    message: expect.stringContaining('secret/db-password'),
  });
  // Ready is about the sync, not the expiry.
  expect(st.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  expect(kubectl(['get', 'secretsync', 'db', '-n', ns.name])).toMatch(
    new RegExp(`EXPIRES[\\s\\S]*${st.expiresOn!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
  );
  expect(await manager.metrics()).toContain(
    `secretsync_object_expiry_timestamp_seconds{namespace="${ns.name}",secretsync="db",object="secret/db-password"} ${exp.getTime() / 1000}`,
  );

  // Several rotations later (every 2 s), still one Warning Event for entering the window.
  const synced = st.lastSuccessfulSyncTime;
  await eventually(
    async () => ((await secretSync('db')).status?.lastSuccessfulSyncTime !== synced ? true : undefined),
    30_000,
    'a rotation',
  );
  // Two more: a second Warning from a rotation is posted before the next rotation writes its status.
  let last = (await secretSync('db')).status?.lastSuccessfulSyncTime;
  for (let i = 0; i < 2; i++) {
    last = await eventually(
      async () => {
        const t = (await secretSync('db')).status?.lastSuccessfulSyncTime;
        return t !== last ? t : undefined;
      },
      30_000,
      'another rotation',
    );
  }
  expect(await warnings('db', 'ObjectExpiring')).toBe(1);

  const later = new Date(Math.floor((Date.now() + 100 * DAY) / 1000) * 1000);
  await azure.secrets(vault).setSecret('db-password', 'second', { expiresOn: later });
  await eventually(
    async () => ((await expiring('db'))?.reason === 'NoObjectExpiring' ? true : undefined),
    30_000,
    'the warning cleared',
  );
  expect((await expiring('db'))?.status).toBe('False');
  expect((await secretSync('db')).status?.expiresOn).toBe(later.toISOString().replace('.000Z', 'Z'));
  expect(await manager.metrics()).toContain(`object="secret/db-password"} ${later.getTime() / 1000}`);
});

test('an expired secret is still served (Key Vault returns it), with ObjectExpired and its own Warning Event', async () => {
  await azure.secrets(vault).setSecret('old-token', 'stale-but-served', { expiresOn: new Date(Date.now() - DAY) });
  await sync(
    'old',
    'azure',
    [{ objectName: 'old-token', objectType: 'secret' }],
    [{ sourcePath: 'old-token', targetKey: 'token' }],
  );
  await eventually(
    async () => ((await expiring('old'))?.reason === 'ObjectExpired' ? true : undefined),
    30_000,
    'ObjectExpired',
  );
  const secret = await k.core.readNamespacedSecret({ name: 'old', namespace: ns.name });
  expect(Buffer.from(secret.data!.token!, 'base64').toString()).toBe('stale-but-served');
  await eventually(
    async () => ((await warnings('old', 'ObjectExpired')) === 1 ? true : undefined),
    10_000,
    'one ObjectExpired Event',
  );
});

test("a certificate's notAfter is reported", async () => {
  const ca = createCa('expiry root', 90);
  const leaf = ca.issue({ commonName: 'expiry.test', usage: 'server', days: 45 });
  await azure.importCertificate(vault, 'tls', { pem: leaf.key + leaf.cert });
  const notAfter = new Date(new (await import('node:crypto')).X509Certificate(leaf.cert).validTo);
  await sync(
    'tls',
    'azure',
    [{ objectName: 'tls', objectType: 'cert' }],
    [{ sourcePath: 'tls', targetKey: 'tls.crt' }],
  );
  await eventually(async () => ((await secretSync('tls')).status?.expiresOn ? true : undefined), 30_000, 'expiresOn');
  expect(new Date((await secretSync('tls')).status!.expiresOn!).getTime()).toBe(notAfter.getTime());
  expect(await expiring('tls')).toMatchObject({ status: 'False', reason: 'NoObjectExpiring' });
});

test('a provider that sends no expiry trailer changes nothing: no condition, no expiresOn, no series', async () => {
  await sync('plain', 'plain', [], [{ sourcePath: 'value', targetKey: 'value' }]);
  const st = (await secretSync('plain')).status!;
  expect(st.conditions?.map((c) => c.type).sort()).toEqual(['Ready', 'SecretCreated']);
  expect(st.expiresOn).toBeUndefined();
  expect(st.syncedObjectVersions?.every((v) => v.expiresOn === undefined)).toBe(true);
  expect(await manager.metrics()).not.toContain('secretsync="plain"');
});
