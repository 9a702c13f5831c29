// Fair share by namespace in the manager's queue (controller/src/queue.ts): one namespace's
// SecretSyncs whose provider never answers must not hold every worker while another namespace's
// SecretSync waits. Two third-party providers (test/helpers/strict-provider.ts): `stuck` never
// answers a Mount (each runs to the manager's provider deadline), `answers` answers at once.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
// Its own controller name: watching every namespace, this manager leaves other tests' SecretSyncs alone.
const CONTROLLER = `fairness-${Date.now().toString(36)}`;
const WORKERS = 4;
const FLOOD = 100;
let flood: Awaited<ReturnType<typeof tempNamespace>>;
let quiet: Awaited<ReturnType<typeof tempNamespace>>;
let stuck: TestProvider;
let answers: TestProvider;
let manager: RunningManager;

async function setUpNamespace(ns: string, provider: string): Promise<void> {
  await k.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'workload' } } });
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider, parameters: { prefix: '' } }),
  });
}

async function createSecretSync(ns: string, name: string): Promise<void> {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns,
    body: secretSyncBody({
      name,
      controllerName: CONTROLLER,
      sa: 'workload',
      spc: 'spc',
      data: { password: 'db-password' },
    }),
  });
}

beforeAll(async () => {
  flood = await tempNamespace(k.core, 'fair-flood');
  quiet = await tempNamespace(k.core, 'fair-quiet');
  const socketDir = mkdtempSync(join(tmpdir(), 'sss-fair-'));
  stuck = await startTestProvider('stuck', socketDir);
  stuck.setState({ files: { 'db-password': 'never' }, hangMs: 3_600_000 });
  answers = await startTestProvider('answers', socketDir);
  answers.setState({ files: { 'db-password': 'quiet-value' } });
  await setUpNamespace(flood.name, 'stuck');
  await setUpNamespace(quiet.name, 'answers');
  // Every namespace (--namespace=), few workers (share: 2) and a short provider deadline.
  manager = await startManager({
    namespace: '',
    providerDir: socketDir,
    args: [`--controller-name=${CONTROLLER}`, `--workers=${WORKERS}`, '--provider-timeout-seconds=5'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await stuck?.stop();
  await answers?.stop();
  await flood?.dispose();
  await quiet?.dispose();
});

test("a namespace whose hundred SecretSyncs hang holds at most the idle workers: another namespace's SecretSync syncs while most of them still wait", async () => {
  for (let i = 0; i < FLOOD; i += 20)
    await Promise.all(Array.from({ length: 20 }, (_, j) => createSecretSync(flood.name, `hang-${i + j}`)));
  // Alone with work, the flooding namespace takes every worker, each Mount hanging.
  await eventually(
    async () => (stuck.requests().length >= WORKERS ? true : undefined),
    30_000,
    'every worker in a hanging Mount',
  );

  await createSecretSync(quiet.name, 'app');
  const ss = await eventually(
    async () => {
      const s = (await k.custom.getNamespacedCustomObject({ ...co, namespace: quiet.name, name: 'app' })) as SecretSync;
      return s.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? s : undefined;
    },
    60_000,
    'the quiet namespace synced',
  );
  expect(ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('CreateSucceeded');
  const secret = await k.core.readNamespacedSecret({ name: 'app', namespace: quiet.name });
  expect(Buffer.from(secret.data!.password!, 'base64').toString()).toBe('quiet-value');
  // It took the first worker a hanging Mount gave back (5 s deadline), not a place behind the
  // flood: in first-come order it would have waited for all 100 hanging Mounts to start (25 rounds
  // of 4, about two minutes). A few rounds at most have started since.
  expect(stuck.requests().length).toBeLessThan(FLOOD / 2);
});
