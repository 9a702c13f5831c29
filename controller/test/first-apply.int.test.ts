// What a user sees right after applying: no false Warnings while the manager's caches catch up.
// A SecretProviderClass applied in the same `kubectl apply` as its SecretSync (before or after it
// in the file) may reach the manager after the SecretSync: that is not "not found". And a provider
// started after its SecretSyncs is noticed when its socket appears, not at their next retry.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretSync } from '../src/api.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';

const info = loadStackInfo();
const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;
let lateProvider: TestProvider | undefined;

const kubectlApply = (objects: object[]) =>
  execFileSync('kubectl', ['--kubeconfig', info.k8s.kubeconfig, 'apply', '-f', '-'], {
    encoding: 'utf8',
    // One List: kubectl applies its items in order, as it does a file's documents.
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });

const readyReason = async (name: string) =>
  (
    (await k.custom.getNamespacedCustomObject({
      group: 'secret-sync.x-k8s.io',
      version: 'v1alpha1',
      plural: 'secretsyncs',
      namespace: ns.name,
      name,
    })) as SecretSync
  ).status?.conditions?.find((c) => c.type === 'Ready')?.reason;

const eventsOf = async (name: string) =>
  (await k.core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` })).items;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'first-apply');
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  await eventually(
    async () => (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name })) ?? undefined,
    30_000,
    'the default ServiceAccount',
  );
  manager = await startManager({ namespace: ns.name, providerDir: provider.socketDir });
});

afterAll(async () => {
  await manager?.stop();
  await Promise.all([provider?.stop(), lateProvider?.stop()]);
  await ns?.dispose();
});

test('a class and its SecretSync applied together sync without a "not found" Warning, in either order', async () => {
  const names = Array.from({ length: 8 }, (_, i) => `together-${i}`);
  for (const [i, name] of names.entries()) {
    const spc = secretProviderClass({ name, namespace: ns.name, provider: 'test', parameters: { prefix: '' } });
    const ss = secretSync({ name, namespace: ns.name, spc: name });
    // Half with the SecretSync first in the file: its class is created only after it.
    kubectlApply(i % 2 ? [spc, ss] : [ss, spc]);
  }
  for (const name of names)
    await eventually(
      async () => ((await readyReason(name)) === 'CreateSucceeded' ? true : undefined),
      30_000,
      `${name} synced`,
    );
  for (const name of names) {
    const reasons = (await eventsOf(name)).map((e) => `${e.type} ${e.reason}`);
    expect([name, reasons]).toEqual([name, ['Normal CreateSucceeded']]);
  }
});

test('a class that really is missing is still reported, as a Warning', async () => {
  kubectlApply([secretSync({ name: 'orphan', namespace: ns.name, spc: 'nowhere' })]);
  const warning = await eventually(
    async () => (await eventsOf('orphan')).find((e) => e.reason === 'ControllerSpcError'),
    30_000,
    'the ControllerSpcError Event',
  );
  expect(warning.type).toBe('Warning');
  expect(await readyReason('orphan')).toBe('ControllerSpcError');
});

test('SecretSyncs created before their provider starts sync as soon as it does, not at their next retry', async () => {
  const late = secretProviderClass({ name: 'late', namespace: ns.name, provider: 'late', parameters: { prefix: '' } });
  const early = ['early-0', 'early-1'].map((name) => secretSync({ name, namespace: ns.name, spc: 'late' }));
  kubectlApply([late, ...early]);
  // Six failures (retries after 1, 2, 4, 8 and 16 s): the next retry is 32 s ± 20 % away.
  await eventually(
    async () =>
      ((await eventsOf('early-0')).find((e) => e.reason === 'CreateFailedProviderError')?.count ?? 0) >= 6
        ? true
        : undefined,
    90_000,
    'six failures of early-0',
  );
  writeFileSync(join(provider.socketDir, 'late.json'), JSON.stringify({ files: { foo: 'value' } }));
  lateProvider = await startTestProvider('late', provider.socketDir);
  // Well within the 25 s at least to that retry (and the 5 minutes the backoff reaches).
  for (const ss of early)
    await eventually(
      async () => ((await readyReason(ss.metadata.name)) === 'CreateSucceeded' ? true : undefined),
      15_000,
      `${ss.metadata.name} synced once its provider started`,
    );
}, 150_000);
