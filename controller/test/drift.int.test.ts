// A managed Secret changed by hand is repaired at the next rotation, without churn when intact:
// the manager may not read Secrets, so each rotation re-asserts the data with an ownership-tested
// patch (a no-op for the apiserver when nothing differs).
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, occurrences, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;

const secret = () => k.core.readNamespacedSecret({ name: 'drifting', namespace: ns.name });
const value = async () => Buffer.from((await secret()).data?.key ?? '', 'base64').toString();
const lastSync = async () =>
  ((await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name: 'drifting' })) as SecretSync).status
    ?.lastSuccessfulSyncTime;
const events = async (reason: string) =>
  (
    await k.core.listNamespacedEvent({
      namespace: ns.name,
      fieldSelector: `involvedObject.name=drifting,reason=${reason}`,
    })
  ).items;
const readyReason = async () =>
  (
    (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name: 'drifting' })) as SecretSync
  ).status?.conditions?.find((c) => c.type === 'Ready')?.reason;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'drift');
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'from-the-vault' } });
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
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
    args: ['--rotation-poll-interval-seconds=2'],
  });
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name: 'drifting', spc: 'spc', type: 'Opaque', data: { key: 'foo' } }),
  });
  await eventually(
    async () => ((await value().catch(() => '')) === 'from-the-vault' ? true : undefined),
    30_000,
    'the Secret',
  );
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('an intact Secret is not rewritten by rotations', async () => {
  await eventually(
    async () => ((await readyReason()) === 'UpdateNoValueChangeSucceeded' ? true : undefined),
    30_000,
    'a no-change rotation',
  );
  const rv = (await secret()).metadata?.resourceVersion;
  const before = await lastSync();
  await eventually(async () => ((await lastSync()) !== before ? true : undefined), 30_000, 'another rotation');
  expect((await secret()).metadata?.resourceVersion).toBe(rv);
  // Nothing was repaired, so nothing says so.
  expect(occurrences(await events('UpdateValueChangeOrForceUpdateSucceeded'))).toBe(0);
  expect(manager.logs()).not.toContain('put its data back');
});

test('data edited by hand is put back at the next rotation; labels others added are kept', async () => {
  await k.core.patchNamespacedSecret(
    {
      name: 'drifting',
      namespace: ns.name,
      body: {
        metadata: { labels: { 'team.example/owner': 'payments' } },
        data: { key: Buffer.from('edited').toString('base64'), extra: Buffer.from('x').toString('base64') },
      },
    },
    MERGE,
  );
  await eventually(async () => ((await value()) === 'from-the-vault' ? true : undefined), 30_000, 'the data put back');
  const s = await secret();
  expect(Object.keys(s.data ?? {})).toEqual(['key']);
  expect(s.metadata?.labels).toMatchObject({ 'team.example/owner': 'payments', 'secrets-store.sync.x-k8s.io': '' });
  // The repair is a value change of the Secret: an Event and a log line say so.
  await eventually(
    async () => (occurrences(await events('UpdateValueChangeOrForceUpdateSucceeded')) === 1 ? true : undefined),
    10_000,
    'the Event',
  );
  expect(manager.logs()).toContain('put its data back');
});

test('a Secret deleted by hand is created again at the next rotation', async () => {
  await k.core.deleteNamespacedSecret({ name: 'drifting', namespace: ns.name });
  await eventually(
    async () => ((await value().catch(() => '')) === 'from-the-vault' ? true : undefined),
    30_000,
    'the Secret back',
  );
  const s = await secret();
  expect(s.metadata?.ownerReferences?.[0]?.name).toBe('drifting');
  await eventually(
    async () => (occurrences(await events('UpdateValueChangeOrForceUpdateSucceeded')) === 2 ? true : undefined),
    10_000,
    'the Event',
  );
  expect(manager.logs()).toContain('Secret was missing; created it again');
  await eventually(
    async () => ((await readyReason()) === 'UpdateNoValueChangeSucceeded' ? true : undefined),
    30_000,
    'the next rotation finding it intact',
  );
});
