// The `vault` label of keyvault_* metrics against the local stack: a tenant naming vaults that never
// answer cannot use up the labels (before: the first --max-vaults names took them for good, and
// every real vault after them was `other`, blinding the per-vault KeyVaultThrottling alert).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { kube, tempNamespace } from '../../test/helpers/kube.js';
import { objectsYaml } from '../../test/helpers/fixtures.js';
import { mountRequest, startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const stamp = Date.now().toString(36);
const vault = `vl-${stamp}`;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let clientId: string;

async function mount(keyvaultName: string, extra: Record<string, string> = {}) {
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: 'workload',
    namespace: ns.name,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
  });
  const parameters = {
    keyvaultName,
    tenantID: azure.tenantId,
    clientID: clientId,
    objects: objectsYaml([{ objectName: 'app', objectType: 'secret' }]),
    ...extra,
  };
  return provider.client.mount(
    mountRequest({ parameters, token: tr.status!.token, namespace: ns.name, serviceAccount: 'workload' }),
    20_000,
  );
}

async function labelledVaults(): Promise<string[]> {
  const text = await provider.metrics();
  return [...new Set([...text.matchAll(/^keyvault_requests_total\{[^}]*vault="([^"]+)"/gm)].map((m) => m[1]!))].sort();
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'vlabels');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  const id = await azure.createIdentity(`vlabels-${ns.name}`);
  clientId = id.clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  await azure.setSecret(vault, 'app', 'value');
  // A cloud whose vault names never resolve: the tenant's junk vaults, with no network answer at all.
  const cloudDir = mkdtempSync(join(tmpdir(), 'clouds-'));
  writeFileSync(
    join(cloudDir, 'nowhere.json'),
    JSON.stringify({
      name: 'AzureStackCloud',
      keyVaultDNSSuffix: 'vault.nowhere.invalid',
      activeDirectoryEndpoint: info.azure.authorityHost,
    }),
  );
  provider = await startProvider({ args: [`--cloud-env-dir=${cloudDir}`, '--max-vaults=2', '--vault-max-retries=0'] });
});

afterAll(async () => {
  await provider?.stop();
  await ns?.dispose();
});

test('vaults that never answer take no label; answering vaults do, the least recently answered evicted with its series', async () => {
  for (let i = 0; i < 3; i++) {
    await expect(
      mount(`junk-${i}-${stamp}`, { cloudName: 'AzureStackCloud', cloudEnvFileName: 'nowhere.json' }),
    ).rejects.toMatchObject({ code: 14, reason: 'VaultUnreachable' });
  }
  expect(await labelledVaults()).toEqual(['other']);

  const res = await mount(vault);
  expect(res.files.map((f) => f.contents.toString())).toEqual(['value']);
  expect(await labelledVaults()).toEqual(['other', vault]);

  // Two more vaults that answer (refusing this identity is an answer): the first to have answered goes.
  const [second, third] = [`vl2-${stamp}`, `vl3-${stamp}`];
  for (const v of [second, third]) {
    await azure.createVault(v);
    await expect(mount(v)).rejects.toMatchObject({ code: 7, reason: 'ForbiddenByRbac' });
  }
  expect(await labelledVaults()).toEqual(['other', second, third].sort());
  expect(await provider.metrics()).not.toMatch(
    new RegExp(`^keyvault_request_duration_seconds_count\\{[^}]*vault="${vault}"`, 'm'),
  );
});
