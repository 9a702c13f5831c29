// Expiry checks between rotations (controller/src/expiry-checks.ts): objects whose expiry times a
// tenant staggered a second apart cost no Mount and one check per floor, not a reconcile each.
// The provider is test/helpers/strict-provider.ts sending the optional expiry trailer; it records
// every Mount it sees.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, occurrences, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const OBJECTS = 8;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'expchecks');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  provider = await startTestProvider('expiring');
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'expiring', parameters: { prefix: '' } }),
  });
  // No rotation within the test, no shared results (every reconcile would Mount), warnings only
  // once expired, and a 10 s floor instead of 5 minutes.
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    args: [
      '--rotation-poll-interval-seconds=3600',
      '--rotation-share-seconds=0',
      '--expiry-warning-days=0',
      '--expiry-check-min-interval-seconds=10',
    ],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('objects expiring a second apart: the condition follows with no Mount after the sync and at most two checks', async () => {
  const files = Object.fromEntries(Array.from({ length: OBJECTS }, (_, i) => [`o${i}`, `value-${i}`]));
  // A second apart, the first a few seconds after the sync below.
  const start = Date.now() + 6_000;
  const expiresOn = Object.fromEntries(
    Object.keys(files).map((p, i) => [p, new Date(Math.ceil((start + i * 1_000) / 1000) * 1000).toISOString()]),
  );
  provider.setState({ files, expiresOn });
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name: 'app', sa: 'workload', spc: 'spc', data: { o0: 'o0' } }),
  });
  const get = async () =>
    (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name: 'app' })) as SecretSync;
  const expiring = (ss: SecretSync) => ss.status?.conditions?.find((c) => c.type === 'Expiring');

  // Every object expired (the message names five and counts the rest).
  const done = await eventually(
    async () => {
      const ss = await get();
      return expiring(ss)?.reason === 'ObjectExpired' && expiring(ss)!.message.includes(`and ${OBJECTS - 5} more`)
        ? ss
        : undefined;
    },
    60_000,
    'every object reported expired',
  );
  expect(done.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
    status: 'True',
    reason: 'CreateSucceeded',
  });
  // One Mount: the create. Before, each transition was a reconcile, each a Mount here (8 more).
  expect(provider.requests().filter((r) => r.podNamespace === ns.name)).toHaveLength(1);
  // Eight transitions within 8 s, a 10 s floor: the first check, then one that sees the rest.
  const checks = manager
    .logs()
    .split('\n')
    .filter((l) => l.includes('"message":"expiry check"') && l.includes(`${ns.name}/app`));
  expect(checks.length).toBeGreaterThanOrEqual(1);
  expect(checks.length).toBeLessThanOrEqual(2);
  const events = await k.core.listNamespacedEvent({
    namespace: ns.name,
    fieldSelector: 'involvedObject.name=app,reason=ObjectExpired',
  });
  expect(occurrences(events.items.filter((e) => e.type === 'Warning'))).toBe(1);
});
