// Providers written for the Secrets Store CSI driver: the manager speaks to them as the driver and
// the upstream sync controller do. The provider here is test/helpers/strict-provider.ts, which
// refuses whatever vault-csi-provider and the driver's e2e provider refuse, and records each
// request's shape. The manager runs under the upstream sync controller's RBAC (core events only).
import { PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { serviceAccountKubeconfig } from '../../test/env/manager-identity.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The upstream chart's ClusterRole (secrets-store-sync-controller), as a Role in one namespace. */
const UPSTREAM_RULES = [
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
  { apiGroups: ['secrets-store.csi.x-k8s.io'], resources: ['secretproviderclasses'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['secret-sync.x-k8s.io'], resources: ['secretsyncs'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['secret-sync.x-k8s.io'], resources: ['secretsyncs/status'], verbs: ['get', 'patch', 'update'] },
];

interface Setup {
  ns: Awaited<ReturnType<typeof tempNamespace>>;
  provider: TestProvider;
  /** A stand-in for provider-azure on the same socket folder (azure.sock), recording what it gets. */
  azure: TestProvider;
  manager: RunningManager;
}

async function setUp(
  prefix: string,
  opts: { managerArgs?: string[]; validateTokensAudience?: string[] } = {},
): Promise<Setup> {
  const ns = await tempNamespace(k.core, prefix);
  const rbac = k.kc.makeApiClient(RbacAuthorizationV1Api);
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'upstream-manager' } } });
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await rbac.createNamespacedRole({
    namespace: ns.name,
    body: { metadata: { name: 'upstream' }, rules: UPSTREAM_RULES },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns.name,
    body: {
      metadata: { name: 'upstream' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'upstream' },
      subjects: [{ kind: 'ServiceAccount', name: 'upstream-manager', namespace: ns.name }],
    },
  });
  const kubeconfig = await serviceAccountKubeconfig(
    loadStackInfo(),
    ns.name,
    'upstream-manager',
    join(mkdtempSync(join(tmpdir(), 'upstream-')), 'kubeconfig'),
  );
  const provider = await startTestProvider(
    'vaultlike',
    undefined,
    opts.validateTokensAudience ? { validateTokensAudience: opts.validateTokensAudience } : {},
  );
  provider.setState({ files: { 'db-password': 'first-value' } });
  // Requires workload identity's audience, as provider-azure does.
  const azure = await startTestProvider('azure', provider.socketDir, {
    validateTokensAudience: ['api://AzureADTokenExchange'],
  });
  azure.setState({ files: { 'db-password': 'from-azure' } });
  for (const [name, p] of [
    ['spc', 'vaultlike'],
    ['azure-spc', 'azure'],
  ] as const)
    await k.custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      body: secretProviderClass({ name, provider: p, parameters: { prefix: '' } }),
    });
  const manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    kubeconfig,
    args: opts.managerArgs ?? [],
  });
  return { ns, provider, azure, manager };
}

async function createSecretSync(ns: string, name: string, spc = 'spc'): Promise<void> {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns,
    body: secretSyncBody({ name, sa: 'workload', spc, data: { password: 'db-password' } }),
  });
}

const get = async (ns: string, name: string) =>
  (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns, name })) as SecretSync;
const ready = (ss: SecretSync) => ss.status?.conditions?.find((c) => c.type === 'Ready');
async function reason(ns: string, name: string, expected: string): Promise<SecretSync> {
  return eventually(
    async () => {
      const ss = await get(ns, name);
      return ready(ss)?.reason === expected ? ss : undefined;
    },
    30_000,
    `${name} to report ${expected}`,
  );
}
const secretValue = async (ns: string, name: string) =>
  Buffer.from((await k.core.readNamespacedSecret({ name, namespace: ns })).data?.password ?? '', 'base64').toString();

async function tearDown(s: Setup | undefined): Promise<void> {
  await s?.manager.stop();
  await s?.provider.stop();
  await s?.azure.stop();
  await s?.ns.dispose();
}

describe('with its own token audience (--provider-token-audiences=vaultlike=vault), under the upstream RBAC', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setUp('thirdparty', {
      managerArgs: ['--provider-token-audiences=vaultlike=vault'],
      validateTokensAudience: ['vault'],
    });
  });
  afterAll(async () => tearDown(s));

  test('the Mount carries what the driver sends: a target path, permission, secrets, pod, ServiceAccount, tokens, authority localhost', async () => {
    await createSecretSync(s.ns.name, 'fields');
    await reason(s.ns.name, 'fields', 'CreateSucceeded');
    expect(await secretValue(s.ns.name, 'fields')).toBe('first-value');
    const first = s.provider.requests()[0]!;
    expect(first).toMatchObject({
      authority: 'localhost',
      targetPath: '/mnt/secrets-store',
      permission: '420',
      secrets: [],
      podNamespace: s.ns.name,
      serviceAccountName: 'workload',
      tokenAudiences: ['vault'],
      currentObjectVersions: [],
    });
    expect(first.attributeNames).toEqual(
      expect.arrayContaining(['csi.storage.k8s.io/pod.name', 'csi.storage.k8s.io/pod.uid', 'prefix']),
    );
  });

  test('each provider gets only its own audience: vaultlike never sees the Azure token, azure never the vault one', async () => {
    await createSecretSync(s.ns.name, 'via-azure', 'azure-spc');
    await reason(s.ns.name, 'via-azure', 'CreateSucceeded');
    expect(await secretValue(s.ns.name, 'via-azure')).toBe('from-azure');
    await createSecretSync(s.ns.name, 'via-vault');
    await reason(s.ns.name, 'via-vault', 'CreateSucceeded');
    const audiences = (p: TestProvider) => new Set(p.requests().map((r) => JSON.stringify(r.tokenAudiences)));
    expect(audiences(s.azure)).toEqual(new Set([JSON.stringify(['api://AzureADTokenExchange'])]));
    expect(audiences(s.provider)).toEqual(new Set([JSON.stringify(['vault'])]));
  });

  test('a later Mount carries the object versions last synced (current_object_version)', async () => {
    await createSecretSync(s.ns.name, 'versions');
    const synced = (await reason(s.ns.name, 'versions', 'CreateSucceeded')).status!.syncedObjectVersions!;
    expect(synced).toEqual([{ id: 'file/db-password', version: String('first-value'.length) }]);
    const before = s.provider.requests().length;
    s.provider.setState({ files: { 'db-password': 'the-second-value' } });
    await k.custom.patchNamespacedCustomObject(
      { ...co, namespace: s.ns.name, name: 'versions', body: { spec: { forceSynchronization: '1' } } },
      MERGE,
    );
    await reason(s.ns.name, 'versions', 'UpdateValueChangeOrForceUpdateSucceeded');
    expect(await secretValue(s.ns.name, 'versions')).toBe('the-second-value');
    const later = s.provider
      .requests()
      .slice(before)
      .filter((r) => r.podNamespace === s.ns.name);
    expect(later.at(-1)!.currentObjectVersions).toEqual(synced);
  });

  test('Events are written with the core events RBAC alone, and none is refused', async () => {
    await createSecretSync(s.ns.name, 'evented');
    await reason(s.ns.name, 'evented', 'CreateSucceeded');
    await eventually(
      async () => {
        const list = await k.core.listNamespacedEvent({
          namespace: s.ns.name,
          fieldSelector: 'involvedObject.name=evented',
        });
        return list.items.some(
          (e) => e.reason === 'CreateSucceeded' && e.type === 'Normal' && e.involvedObject.kind === 'SecretSync',
        )
          ? true
          : undefined;
      },
      10_000,
      'the CreateSucceeded event',
    );
    expect(s.manager.logs()).not.toContain('could not record event');
  });

  test('a provider failure names that provider and its socket, with one period after its message', async () => {
    s.provider.setState({
      files: {},
      fail: { code: 'PermissionDenied', message: 'permission denied on secret/data/db.' },
    });
    try {
      await createSecretSync(s.ns.name, 'refused');
      const message = ready(await reason(s.ns.name, 'refused', 'CreateFailedProviderError'))!.message;
      expect(message).toContain(
        "provider 'vaultlike': PERMISSION_DENIED: permission denied on secret/data/db (ExampleFailure). Check the logs of the process serving provider 'vaultlike' on ",
      );
      expect(message).toContain('vaultlike.sock');
      expect(message).not.toContain('..');
      expect(message).not.toContain('provider-azure-installer');
    } finally {
      s.provider.setState({ files: { 'db-password': 'first-value' } });
    }
  });
});

describe('a provider without token audiences (the default for every provider but azure)', () => {
  let s: Setup;
  beforeAll(async () => {
    // The provider authenticates otherwise (as vault-csi-provider does when no token is sent): it requires none.
    s = await setUp('notoken', { validateTokensAudience: [] });
  });
  afterAll(async () => tearDown(s));

  test('no TokenRequest is made and the Mount has no serviceAccount.tokens; the Secret syncs', async () => {
    await createSecretSync(s.ns.name, 'tokenless');
    await reason(s.ns.name, 'tokenless', 'CreateSucceeded');
    expect(await secretValue(s.ns.name, 'tokenless')).toBe('first-value');
    const r = s.provider.requests()[0]!;
    expect(r.attributeNames).not.toContain('csi.storage.k8s.io/serviceAccount.tokens');
    expect(r.tokenAudiences).toBeUndefined();
    expect(r.serviceAccountName).toBe('workload');
    expect(await s.manager.metrics()).not.toMatch(/^secretsync_token_requests_total\{[^}]*\} [1-9]/m);
  });
});
