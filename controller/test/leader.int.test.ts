// Two managers: one holds the Lease and works; kill it and the other takes over.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
const managers: RunningManager[] = [];

async function create(name: string) {
  await k.custom.createNamespacedCustomObject({
    ...co, namespace: ns.name,
    body: { apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`, kind: 'SecretSync', metadata: { name }, spec: { serviceAccountName: 'default', secretProviderClassName: 'spc', secretObject: { data: [{ sourcePath: 'foo', targetKey: 'key' }] } } },
  });
}
const synced = (name: string, timeoutMs: number) =>
  eventually(async () => {
    const ss = (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name })) as SecretSync;
    return ss.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? ss : undefined;
  }, timeoutMs, `${name} to sync`);
const leading = async (m: RunningManager) => /^secretsync_leader 1$/m.test(await m.metrics().catch(() => ''));

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'leader');
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  await k.custom.createNamespacedCustomObject({ group: 'secrets-store.csi.x-k8s.io', version: 'v1', namespace: ns.name, plural: 'secretproviderclasses', body: { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'spc' }, spec: { provider: 'test', parameters: { prefix: '' } } } });
  await eventually(async () => ((await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined)) ? true : undefined), 30_000, 'the default ServiceAccount');
  for (const id of ['one', 'two']) {
    managers.push(await startManager({ namespace: ns.name, providerDir: provider.socketDir, args: ['--leader-elect=true', '--leader-election-namespace=azure-secret-store', '--lease-duration-seconds=5'], env: { POD_NAME: `manager-${id}` } }));
  }
});

afterAll(async () => {
  for (const m of managers) await m.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('exactly one manager leads; when it dies the other takes over within the lease duration', async () => {
  const leader = await eventually(async () => {
    const states = await Promise.all(managers.map(leading));
    return states.filter(Boolean).length === 1 ? managers[states.indexOf(true)] : undefined;
  }, 20_000, 'one leader');
  await create('first');
  await synced('first', 20_000);
  const follower = managers.find((m) => m !== leader)!;
  expect(await leading(follower)).toBe(false);
  expect(follower.logs()).not.toContain('"message":"synced"');

  await leader.stop('SIGKILL');
  await create('second');
  await synced('second', 30_000);
  expect(await leading(follower)).toBe(true);
  expect(follower.logs()).toContain('took over the lease');
});
