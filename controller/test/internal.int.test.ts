// ControllerInternalError: the manager's own setup is wrong — here its RBAC lacks
// serviceaccounts/token — and the status says so instead of blaming the user's input.
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
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
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'internal');
  const rbac = k.kc.makeApiClient(RbacAuthorizationV1Api);
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'crippled-manager' } } });
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  // The manager's rules, minus serviceaccounts/token.
  await rbac.createNamespacedRole({
    namespace: ns.name,
    body: {
      metadata: { name: 'crippled' },
      rules: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'patch'] },
        { apiGroups: ['secret-sync.x-k8s.io'], resources: ['secretsyncs'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['secret-sync.x-k8s.io'], resources: ['secretsyncs/status'], verbs: ['patch'] },
        {
          apiGroups: ['secrets-store.csi.x-k8s.io'],
          resources: ['secretproviderclasses'],
          verbs: ['get', 'list', 'watch'],
        },
        { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns.name,
    body: {
      metadata: { name: 'crippled' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'crippled' },
      subjects: [{ kind: 'ServiceAccount', name: 'crippled-manager', namespace: ns.name }],
    },
  });
  const kubeconfig = await serviceAccountKubeconfig(
    loadStackInfo(),
    ns.name,
    'crippled-manager',
    join(mkdtempSync(join(tmpdir(), 'crippled-')), 'kubeconfig'),
  );
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'v' } });
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'test', parameters: { prefix: '' } }),
  });
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    kubeconfig,
    args: ['--provider-token-audiences=test=api://AzureADTokenExchange'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('ControllerInternalError when the manager may not mint tokens', async () => {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name: 'ss', sa: 'workload', spc: 'spc', data: { key: 'foo' } }),
  });
  const ss = await eventually(
    async () => {
      const o = (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name: 'ss' })) as SecretSync;
      return o.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'ControllerInternalError'
        ? o
        : undefined;
    },
    30_000,
    'ControllerInternalError',
  );
  expect(ss.status!.conditions!.find((c) => c.type === 'Ready')!.message).toContain('may not mint tokens');
  await eventually(
    async () =>
      (await k.core.listNamespacedEvent({ namespace: ns.name })).items.some(
        (e) => e.reason === 'ControllerInternalError' && e.type === 'Warning',
      )
        ? true
        : undefined,
    10_000,
    'the event',
  );
});
