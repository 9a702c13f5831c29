// The seed guide end to end: the guide's own SecretProviderClass and SecretSync YAML, applied with
// the real kubectl, synced by the manager through provider-azure from the Key Vault emulator.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';
import { secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const KEYVAULT_NAME = `my-kv-${Date.now().toString(36)}`;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let manager: RunningManager;
let clientId: string;

const kubectl = (args: string[], input?: string) =>
  execFileSync('kubectl', ['--kubeconfig', info.k8s.kubeconfig, ...args], {
    encoding: 'utf8',
    ...(input ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });

function spcYaml(): string {
  return `apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: secret-provider-class-name                      # Name of the class; must be unique per Kubernetes namespace
  namespace: ${ns.name}                    # Kubernetes namespace to make the secrets accessible in
spec:
  provider: azure
  parameters:
    clientID: "${clientId}"               # Managed Identity Client ID for accessing the Azure Key Vault with.
    keyvaultName: ${KEYVAULT_NAME}                       # The name of the Azure Key Vault to synchronize secrets from.
    objects: |
      array:
        - |
          objectName: my-secret            # The name of the secret to sychronize.
          objectType: secret
          objectVersionHistory: 2                       # [optional] The number of versions to synchronize, starting from latest.
    tenantID: "${azure.tenantId}"                       # The tenant ID of the Key Vault 
`;
}

function ssYaml(): string {
  return `apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: secret-sync-name                                  # Name of the object; must be unique per Kubernetes namespace
  namespace: ${ns.name}                      # Kubernetes namespace
spec:
  serviceAccountName: my-service-account             # The Kubernetes service account to be given permissions to access the secret.
  secretProviderClassName: secret-provider-class-name     # The name of the matching SecretProviderClass with the configuration to access the AKV storing this secret
  secretObject:
    type: Opaque
    data:
    - sourcePath: my-secret/0                # Name of the secret in Azure Key Vault with an optional version number (defaults to latest)
      targetKey: my-secret-data-key0         # Target name of the secret in the Kubernetes secret store (must be unique)
    - sourcePath: my-secret/1                # [optional] Next version of the AKV secret. Note that versions of the secret must match the configured objectVersionHistory in the secrets provider class 
      targetKey: my-secret-data-key1         # [optional] Next target name of the secret in the K8s secret store
`;
}

const readKey = (key: string) =>
  kubectl(['get', 'secret', 'secret-sync-name', '-n', ns.name, '-o', `jsonpath={.data.${key}}`]);
const decoded = (key: string) => Buffer.from(readKey(key), 'base64').toString('utf8');
const readyReason = () =>
  kubectl([
    'get',
    'secretsync',
    'secret-sync-name',
    '-n',
    ns.name,
    '-o',
    'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
  ]);

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'seed');
  await azure.createVault(KEYVAULT_NAME);
  const identity = await azure.createIdentity(`my-identity-${ns.name}`);
  clientId = identity.clientId;
  await azure.assignRole('Key Vault Reader', clientId, KEYVAULT_NAME);
  await azure.assignRole('Key Vault Secrets User', clientId, KEYVAULT_NAME);
  await azure.setSecret(KEYVAULT_NAME, 'my-secret', 'Hello!');
  // A second apart, as typed by hand: Key Vault orders versions of one second by id only. The wait
  // is the condition.
  await new Promise((r) => setTimeout(r, 1_050));
  await azure.setSecret(KEYVAULT_NAME, 'my-secret', 'Hello2');
  kubectl(
    ['apply', '-f', '-'],
    `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-service-account\n  namespace: ${ns.name}\n`,
  );
  await azure.addFederatedCredential(clientId, {
    name: 'my-credential',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:my-service-account`,
  });
  const socketDir = mkdtempSync(join(tmpdir(), 'sss-sockets-'));
  provider = await startProvider({ socketDir });
  manager = await startManager({
    namespace: ns.name,
    providerDir: socketDir,
    args: ['--rotation-poll-interval-seconds=2'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('the guide: two versions land in two keys and describe tells the story', async () => {
  kubectl(['apply', '-f', '-'], spcYaml());
  kubectl(['apply', '-f', '-'], ssYaml());
  await eventually(async () => (readKey('my-secret-data-key0') ? true : undefined), 30_000, 'the Secret');
  expect(decoded('my-secret-data-key0')).toBe('Hello2');
  expect(decoded('my-secret-data-key1')).toBe('Hello!');
  const described = kubectl(['describe', 'secretsync', 'secret-sync-name', '-n', ns.name]);
  expect(described).toMatch(/CreateSucceeded|UpdateNoValueChangeSucceeded/);
  expect(described).toContain('secret/my-secret/0');
  expect(kubectl(['get', 'secrets', '-n', ns.name])).toContain('secret-sync-name');
});

test('rotation: a new Key Vault version shows up in the Secret; no change writes nothing', async () => {
  await eventually(
    async () => (readyReason() === 'UpdateNoValueChangeSucceeded' ? true : undefined),
    30_000,
    'a no-change rotation',
  );
  const rv = kubectl([
    'get',
    'secret',
    'secret-sync-name',
    '-n',
    ns.name,
    '-o',
    'jsonpath={.metadata.resourceVersion}',
  ]);
  const lastSync = () =>
    kubectl([
      'get',
      'secretsync',
      'secret-sync-name',
      '-n',
      ns.name,
      '-o',
      'jsonpath={.status.lastSuccessfulSyncTime}',
    ]);
  const checked = lastSync();
  await eventually(async () => (lastSync() !== checked ? true : undefined), 30_000, 'another no-change rotation');
  expect(
    kubectl(['get', 'secret', 'secret-sync-name', '-n', ns.name, '-o', 'jsonpath={.metadata.resourceVersion}']),
  ).toBe(rv);
  // The first no-change check is an Event; repeating it is not (its trace is lastSuccessfulSyncTime).
  // (Repeats would be one Event with a higher count: the count is what says it happened once.)
  const noChangeEvents = kubectl([
    'get',
    'events',
    '-n',
    ns.name,
    '-o',
    'jsonpath={range .items[*]}{.reason}x{.count} {end}',
  ])
    .trim()
    .split(' ')
    .filter((r) => r.startsWith('UpdateNoValueChangeSucceeded'));
  expect(noChangeEvents).toEqual(['UpdateNoValueChangeSucceededx1']);
  await azure.setSecret(KEYVAULT_NAME, 'my-secret', 'Hello3');
  await eventually(
    async () => (decoded('my-secret-data-key0') === 'Hello3' ? true : undefined),
    30_000,
    'the rotated value',
  );
  expect(decoded('my-secret-data-key1')).toBe('Hello2');
  const events = kubectl(['get', 'events', '-n', ns.name, '-o', 'jsonpath={.items[*].reason}']);
  expect(events).toContain('UpdateValueChangeOrForceUpdateSucceeded');
});

test("hostile classes in the same namespace get a clear provider error each; the guide's SecretSync keeps syncing", async () => {
  const hostile: Record<string, { parameters: Record<string, string>; says: string }> = {
    'node-identity': {
      parameters: { useVMManagedIdentity: 'true' },
      says: "useVMManagedIdentity: the node's managed identity is disabled in this provider",
    },
    'node-and-client': {
      parameters: { useVMManagedIdentity: 'true', clientID: clientId },
      says: 'only one identity may be configured',
    },
    'read-a-file': {
      parameters: { clientID: clientId, cloudName: 'AzureStackCloud', cloudEnvFileName: '/etc/passwd' },
      says: 'AzureStackCloud is not enabled in this provider',
    },
    'ten-thousand': {
      parameters: {
        clientID: clientId,
        objects:
          'array:\n' +
          Array.from({ length: 10_000 }, (_, i) => `  - |\n    objectName: o${i}\n    objectType: secret\n`).join(''),
      },
      says: 'objects',
    },
  };
  for (const [name, h] of Object.entries(hostile)) {
    await k.custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      body: {
        apiVersion: 'secrets-store.csi.x-k8s.io/v1',
        kind: 'SecretProviderClass',
        metadata: { name },
        spec: {
          provider: 'azure',
          parameters: {
            keyvaultName: KEYVAULT_NAME,
            tenantID: azure.tenantId,
            objects: 'array:\n  - |\n    objectName: my-secret\n    objectType: secret\n',
            ...h.parameters,
          },
        },
      },
    });
    await k.custom.createNamespacedCustomObject({
      group: 'secret-sync.x-k8s.io',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'secretsyncs',
      body: secretSyncBody({ name, sa: 'my-service-account', spc: name, data: { k: 'my-secret' } }),
    });
  }
  for (const [name, h] of Object.entries(hostile)) {
    const ready = await eventually(
      async () => {
        const ss = (await k.custom.getNamespacedCustomObject({
          group: 'secret-sync.x-k8s.io',
          version: 'v1alpha1',
          namespace: ns.name,
          plural: 'secretsyncs',
          name,
        })) as { status?: { conditions?: { type: string; reason: string; message: string }[] } };
        return ss.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'CreateFailedProviderError');
      },
      30_000,
      `${name} to fail`,
    );
    expect(ready.message).toContain("provider 'azure': INVALID_ARGUMENT: ");
    expect(ready.message).toContain(h.says);
    expect(ready.message).toContain('container provider-azure-installer');
    expect(ready.message).not.toContain('root:');
  }
  // The provider is still there for everyone: the guide's SecretSync still rotates.
  await azure.setSecret(KEYVAULT_NAME, 'my-secret', 'Hello4');
  await eventually(
    async () => (decoded('my-secret-data-key0') === 'Hello4' ? true : undefined),
    30_000,
    'the rotated value',
  );
  expect(
    provider
      .logs()
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('{')),
  ).toEqual([]);
});
