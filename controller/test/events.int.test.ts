// Events like Kubernetes' own: a SecretSync that keeps failing shows one Warning whose count rises
// ("x5 over 20s" in `kubectl describe`), not a wall of identical lines — and an Event deleted
// meanwhile (Events live an hour) is written again.
import type { CoreV1Event } from '@kubernetes/client-node';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';

const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'events');
  provider = await startTestProvider('test');
  provider.setState({ files: {}, fail: { code: 'PermissionDenied', message: 'the identity may not read it' } });
  await k.objects.create(
    secretProviderClass({ name: 'good', namespace: ns.name, provider: 'test', parameters: { prefix: '' } }),
  );
  // A 5 s rotation interval caps the retries' backoff at 5 s: several failures within the test.
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    args: ['--rotation-poll-interval-seconds=5'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

const failures = async (): Promise<CoreV1Event[]> =>
  (
    await k.core.listNamespacedEvent({
      namespace: ns.name,
      fieldSelector: 'involvedObject.name=failing,reason=CreateFailedProviderError',
    })
  ).items;

test('a SecretSync failing again and again has one Warning Event whose count and lastTimestamp rise', async () => {
  await k.objects.create(secretSync({ name: 'failing', namespace: ns.name, spc: 'good' }));
  const first = await eventually(async () => (await failures())[0], 30_000, 'the first Warning');
  expect(first.type).toBe('Warning');
  const repeated = await eventually(
    async () => {
      const items = await failures();
      return items.length === 1 && (items[0]!.count ?? 1) >= 4 ? items[0] : undefined;
    },
    60_000,
    'the same Event counting four failures',
  );
  expect((await failures()).map((e) => e.metadata?.name)).toEqual([first.metadata?.name]);
  expect(repeated.message).toBe(first.message);
  expect(repeated.firstTimestamp).toEqual(first.firstTimestamp);
  expect(new Date(repeated.lastTimestamp!).getTime()).toBeGreaterThan(new Date(first.lastTimestamp!).getTime());
});

test('an Event deleted meanwhile is written again, counting on', async () => {
  const [old] = await failures();
  await k.core.deleteNamespacedEvent({ name: old!.metadata!.name!, namespace: ns.name });
  const again = await eventually(async () => (await failures())[0], 30_000, 'a new Warning');
  expect(again.metadata?.name).not.toBe(old!.metadata?.name);
  expect(again.count).toBeGreaterThan(old!.count!);
});
