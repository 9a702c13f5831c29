// The expiry series caps end to end: Key Vault `exp`s through provider-azure to the manager's
// /metrics, with small caps (2 per SecretSync, 3 in all). Before them, every object a tenant listed
// was a series of its own, rebuilt at every start: 800 000 reached the heap limit.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';
import type { SecretSync } from '../src/api.js';
import { azureParameters, secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `cap-${Date.now().toString(36)}`;
const DAY = 86_400_000;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let manager: RunningManager;
let clientId: string;

const sync = { group: 'secret-sync.x-k8s.io', version: 'v1alpha1', plural: 'secretsyncs' };

/** A SecretSync of secrets named after their expiry in days from now. */
async function create(name: string, days: number[]) {
  for (const d of days)
    await azure
      .secrets(vault)
      .setSecret(`in-${d}-days`, 'x', { expiresOn: new Date(Math.floor((Date.now() + d * DAY) / 1000) * 1000) });
  const objects = days.map((d) => ({ objectName: `in-${d}-days`, objectType: 'secret' }));
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({
      name,
      provider: 'azure',
      parameters: azureParameters({ keyvaultName: vault, tenantID: azure.tenantId, clientID: clientId, objects }),
    }),
  });
  await k.custom.createNamespacedCustomObject({
    ...sync,
    namespace: ns.name,
    body: secretSyncBody({
      name,
      sa: 'workload',
      spc: name,
      type: 'Opaque',
      data: days.map((d) => ({ sourcePath: `in-${d}-days`, targetKey: `k${d}` })),
    }),
  });
  await eventually(
    async () =>
      (
        (await k.custom.getNamespacedCustomObject({ ...sync, namespace: ns.name, name })) as SecretSync
      ).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined,
    30_000,
    `${name} synced`,
  );
}

/** The exported series as "secretsync object", and the dropped counter by reason. */
async function scrape() {
  const text = await manager.metrics();
  const series = [
    ...text.matchAll(
      /^secretsync_object_expiry_timestamp_seconds\{namespace="[^"]+",secretsync="([^"]+)",object="([^"]+)"\}/gm,
    ),
  ]
    .map((m) => `${m[1]} ${m[2]}`)
    .sort();
  const dropped = Object.fromEntries(
    [...text.matchAll(/^secretsync_object_expiry_series_dropped_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  );
  return { series, dropped };
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'expcap');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  const id = await azure.createIdentity(`expcap-${ns.name}`);
  clientId = id.clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  const socketDir = mkdtempSync(join(tmpdir(), 'sss-expcap-'));
  provider = await startProvider({ socketDir });
  manager = await startManager({
    namespace: ns.name,
    providerDir: socketDir,
    args: ['--rotation-poll-interval-seconds=2', '--max-expiry-series-per-secretsync=2', '--max-expiry-series=3'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('series are capped per SecretSync and in all, the soonest expiries kept and the rest counted; a deletion frees series', async () => {
  await create('many', [40, 10, 30, 20]);
  await eventually(async () => ((await scrape()).series.length === 2 ? true : undefined), 10_000, "many's series");
  expect((await scrape()).series).toEqual(['many secret/in-10-days', 'many secret/in-20-days']);
  expect((await scrape()).dropped.per_secretsync).toBeGreaterThanOrEqual(2);

  // Sooner expiries elsewhere take the total's places from the latest kept ones.
  await create('sooner', [2, 1]);
  await eventually(
    async () => ((await scrape()).series.some((s) => s.startsWith('sooner')) ? true : undefined),
    10_000,
    "sooner's series",
  );
  expect((await scrape()).series).toEqual([
    'many secret/in-10-days',
    'sooner secret/in-1-days',
    'sooner secret/in-2-days',
  ]);
  // many's next rotation (every 2 s) reports the one the total left out.
  await eventually(async () => ((await scrape()).dropped.total ?? 0) >= 1 || undefined, 15_000, 'a drop for the total');

  await k.custom.deleteNamespacedCustomObject({ ...sync, namespace: ns.name, name: 'sooner' });
  await eventually(
    async () => ((await scrape()).series.join() === 'many secret/in-10-days,many secret/in-20-days' ? true : undefined),
    15_000,
    "many's second series back",
  );
});
