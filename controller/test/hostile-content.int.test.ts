// What a provider returns is a tenant's bytes (any tenant can store anything in their own vault):
// the manager parses it on its one thread, which serves every namespace. Each case below stalled
// that thread before; now it is refused, named on the SecretSync, while the others keep syncing.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { opensslPfx, withMacIterations } from '../../test/helpers/pfx.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;

async function secretSync(name: string, type: string, data: { sourcePath: string; targetKey: string }[]) {
  await k.custom.createNamespacedCustomObject({
    ...co, namespace: ns.name,
    body: { apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`, kind: 'SecretSync', metadata: { name }, spec: { serviceAccountName: 'default', secretProviderClassName: 'files', secretObject: { type, data } } },
  });
}

const readyOf = async (name: string) =>
  ((await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name })) as SecretSync).status?.conditions?.find((c) => c.type === 'Ready');

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'hostile');
  provider = await startTestProvider('files');
  // The 104-byte attack of issue 24 in spirit: a real PFX whose MAC asks for 2^31 - 1 iterations.
  // node-forge ran them all before failing: 1.7 µs each, 2^25 stalled every sync and /healthz for
  // 60-100 s per attempt (a liveness-probe crash loop), and 2^31 - 1 is about an hour.
  provider.setState({ files: { pfx: withMacIterations(opensslPfx(), 2 ** 31 - 1).toString('base64'), plain: 'plain-value' } });
  await eventually(async () => ((await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined)) ? true : undefined), 30_000, 'the default ServiceAccount');
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io', version: 'v1', namespace: ns.name, plural: 'secretproviderclasses',
    body: { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'files' }, spec: { provider: 'files', parameters: { prefix: '' } } },
  });
  manager = await startManager({ namespace: ns.name, providerDir: provider.socketDir, args: ['--rotation-poll-interval-seconds=3600', '--workers=2'] });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

test('a PKCS#12 asking for 2^31 - 1 key-derivation iterations is refused by name, and the other SecretSyncs sync meanwhile', async () => {
  await secretSync('hostile-tls', 'kubernetes.io/tls', [{ sourcePath: 'pfx', targetKey: 'tls.crt' }, { sourcePath: 'pfx', targetKey: 'tls.key' }]);
  await secretSync('after', 'Opaque', [{ sourcePath: 'plain', targetKey: 'key' }]);
  const refused = await eventually(async () => {
    const ready = await readyOf('hostile-tls');
    return ready?.reason === 'UserInputValidationFailed' ? ready : undefined;
  }, 60_000, 'hostile-tls to be refused');
  expect(refused.message).toContain("the provider's file 'pfx' is refused: the PKCS#12 file asks for 2147483647 key-derivation iterations");
  await eventually(async () => ((await readyOf('after'))?.status === 'True' ? true : undefined), 60_000, 'the other SecretSync to sync');
  const secret = await k.core.readNamespacedSecret({ name: 'after', namespace: ns.name });
  expect(Buffer.from(secret.data!.key!, 'base64').toString()).toBe('plain-value');
  expect((await fetch(manager.healthUrl, { signal: AbortSignal.timeout(2_000) })).status).toBe(200);
});
