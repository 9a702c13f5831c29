// The manager against an apiserver that goes away: a control plane of this test's own is
// restarted while SecretSyncs are being created, and everything converges.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../src/api.js';
import { repoRoot, startControlPlane, yamlFilesIn, type ControlPlane } from '../../test/env/control-plane.js';
import { createCa } from '../../test/env/pki.js';
import { eventually } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const NS = 'restart';
let cp: ControlPlane;
let provider: TestProvider;
let manager: RunningManager;
let custom: CustomObjectsApi;

beforeAll(async () => {
  cp = await startControlPlane({
    stateDir: mkdtempSync(join(tmpdir(), 'sss-restart-')),
    ca: createCa(),
    manifests: yamlFilesIn(join(repoRoot, 'deploy', 'crds')),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.info.kubeconfig);
  custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await eventually(
    async () =>
      (await core.readNamespacedServiceAccount({ name: 'default', namespace: NS }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
  await custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: NS,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'test', parameters: { prefix: '' } }),
  });
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'v' } });
  manager = await startManager({
    namespace: NS,
    providerDir: provider.socketDir,
    kubeconfig: cp.info.kubeconfig,
    args: ['--workers=4'],
  });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await cp?.stop();
});

const create = (name: string) =>
  custom.createNamespacedCustomObject({
    ...co,
    namespace: NS,
    body: secretSyncBody({ name, spc: 'spc', data: { key: 'foo' } }),
  });

test('SecretSyncs created around an apiserver restart all become Ready', async () => {
  const before = Array.from({ length: 20 }, (_, i) => `before-${i}`);
  await Promise.all(before.map(create));
  await cp.restartApiserver(3_000);
  const after = Array.from({ length: 5 }, (_, i) => `after-${i}`);
  await Promise.all(after.map(create));
  await eventually(
    async () => {
      const list = (await custom.listNamespacedCustomObject({ ...co, namespace: NS })) as {
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      };
      const ready = list.items.filter((o) =>
        o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ).length;
      return ready === 25 ? true : undefined;
    },
    90_000,
    'all 25 to be Ready',
  );
  expect(manager.child.exitCode).toBeNull();
});

test('SIGTERM lets an in-flight reconcile finish and report before the manager exits', async () => {
  provider.setState({ files: { foo: 'v' }, hangMs: 2_000 });
  const mounts = provider.requests().length;
  await create('draining');
  await eventually(
    async () => (provider.requests().length > mounts ? true : undefined),
    10_000,
    'the Mount to reach the provider',
  );
  expect(await manager.stop('SIGTERM')).toBe(0);
  const ss = (await custom.getNamespacedCustomObject({ ...co, namespace: NS, name: 'draining' })) as {
    status?: { conditions?: { type: string; reason: string }[] };
  };
  expect(ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('CreateSucceeded');
  expect(manager.logs()).toMatch(/"message":"stopping".*\n.*"secretSync":"restart\/draining"/);
});
