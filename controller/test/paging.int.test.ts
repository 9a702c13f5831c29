// The manager's first list reads the SecretSyncs in pages of 500 with continue tokens; a SecretSync
// on the third page syncs. Also run on kine (test/env/compat.sh), whose list and continue-token
// handling is its own translation of the etcd API over SQL.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
// Two full pages of 500 and part of a third: this product's own SecretSync sorts last by name.
const OTHERS = 1_100;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager | undefined;

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

/** Runs `f` over 0..n-1 with at most `width` calls in flight. */
async function pool(n: number, width: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

test('a SecretSync on the third page of the first list syncs', async () => {
  ns = await tempNamespace(k.core, 'paging');
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'paged' } });
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'good', provider: 'test', parameters: { prefix: '' } }),
  });
  // Another controller's SecretSyncs: listed and cached by this manager, never synced by it.
  await pool(OTHERS, 16, (i) =>
    k.custom.createNamespacedCustomObject({
      ...co,
      namespace: ns.name,
      body: secretSync({ name: `other-${String(i).padStart(5, '0')}`, controllerName: 'someone-else' }),
    }),
  );
  await k.custom.createNamespacedCustomObject({ ...co, namespace: ns.name, body: secretSync({ name: 'zz-mine' }) });
  const firstPage = (await k.custom.listNamespacedCustomObject({ ...co, namespace: ns.name, limit: 500 })) as {
    metadata: { continue?: string };
  };
  expect(firstPage.metadata.continue).toBeTruthy();

  // Started after they all exist, so only its first list (no watch event) can bring zz-mine in.
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    args: ['--rotation-poll-interval-seconds=3600'],
  });
  const ready = await eventually(
    async () => {
      const ss = (await k.custom.getNamespacedCustomObject({
        ...co,
        namespace: ns.name,
        name: 'zz-mine',
      })) as SecretSync;
      return ss.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'CreateSucceeded');
    },
    60_000,
    'zz-mine to sync',
  );
  expect(ready.status).toBe('True');
  const s = await k.core.readNamespacedSecret({ name: 'zz-mine', namespace: ns.name });
  expect(Buffer.from(s.data!.key!, 'base64').toString()).toBe('paged');
}, 300_000);
