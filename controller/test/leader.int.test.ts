// Two managers share a Lease: one works. It must never be two: a leader that dies is replaced, one
// that is stopped hands over at once, one cut off from the apiserver (connection blackholed, not
// closed) stops before the other starts, and one frozen (SIGSTOP) and resumed after the other took
// over writes nothing.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { managerKubeconfig } from '../../test/env/manager-identity.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { startRelay, type Relay } from '../../test/helpers/tcp-proxy.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
const running: RunningManager[] = [];
const relays: Relay[] = [];

async function create(name: string) {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name, spc: 'spc', data: { key: 'foo' } }),
  });
}
const synced = (name: string, timeoutMs: number) =>
  eventually(
    async () => {
      const ss = (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name })) as SecretSync;
      return ss.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? ss : undefined;
    },
    timeoutMs,
    `${name} to sync`,
  );
const leading = async (m: RunningManager) => /^secretsync_leader 1$/m.test(await m.metrics().catch(() => ''));
/** Events the manager of this pod name wrote (core Events carry it as reportingInstance). */
const eventsBy = async (pod: string) =>
  (await k.core.listNamespacedEvent({ namespace: ns.name })).items.filter((e) => e.reportingInstance === pod);

/**
 * Starts a manager on the chart's Lease (its RBAC names that one Lease; each test starts from no
 * Lease); a `relay` puts its apiserver connection through a relay the test can cut.
 */
async function manager(id: string, leaseSeconds: number, relay?: Relay): Promise<RunningManager> {
  const dir = mkdtempSync(join(tmpdir(), `leader-${id}-`));
  const kubeconfig = relay
    ? await managerKubeconfig(loadStackInfo(), dir, undefined, `https://${relay.address}`)
    : undefined;
  const m = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    dir,
    ...(kubeconfig ? { kubeconfig } : {}),
    args: [
      '--leader-elect=true',
      '--leader-election-namespace=azure-secret-store',
      `--lease-duration-seconds=${leaseSeconds}`,
    ],
    env: { POD_NAME: `manager-${id}` },
  });
  running.push(m);
  return m;
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'leader');
  provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'test', parameters: { prefix: '' } }),
  });
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
});

beforeEach(async () => {
  await k.kc
    .makeApiClient(CoordinationV1Api)
    .deleteNamespacedLease({ name: 'secret-store-sync-manager', namespace: 'azure-secret-store' })
    .catch(() => undefined);
});

afterAll(async () => {
  for (const m of running) {
    if (m.child.signalCode === null && m.child.exitCode === null) m.child.kill('SIGCONT');
    await m.stop('SIGKILL');
  }
  for (const r of relays) await r.close();
  await provider?.stop();
  await ns?.dispose();
});

test('exactly one manager leads; when it dies the other takes over within the lease duration', async () => {
  const one = await manager('a1', 5);
  await eventually(async () => ((await leading(one)) ? true : undefined), 20_000, 'the first to lead');
  const two = await manager('a2', 5);
  await create('first');
  await synced('first', 20_000);
  expect(await leading(two)).toBe(false);
  expect(two.logs()).not.toContain('"message":"synced"');

  await one.stop('SIGKILL');
  await create('second');
  await synced('second', 30_000);
  expect(await leading(two)).toBe(true);
  expect(two.logs()).toContain('took over the lease');
  await two.stop('SIGKILL');
});

test('SIGTERM hands the lease back: the other leads at once, not a lease duration later', async () => {
  const one = await manager('b1', 20);
  await eventually(async () => ((await leading(one)) ? true : undefined), 20_000, 'the first to lead');
  const two = await manager('b2', 20);
  // Time for the second to read the lease held (it does at start); nothing it shows says it has.
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await one.stop('SIGTERM')).toBe(0);
  const stoppedAt = Date.now();
  await eventually(async () => ((await leading(two)) ? true : undefined), 20_000, 'the second to lead');
  // Without the release the second waits out the 20 s lease; with it, a retry period (about 3 s).
  expect(Date.now() - stoppedAt).toBeLessThan(10_000);
  expect(one.logs()).toContain('released the lease');
  expect(two.logs()).toContain('"previous":"(released)"');
  await two.stop('SIGKILL');
});

test('a leader whose apiserver connection is blackholed stops before the other takes over', async () => {
  const relay = await startRelay({ host: '127.0.0.1', port: Number(new URL(loadStackInfo().k8s.server).port) });
  relays.push(relay);
  const one = await manager('c1', 6, relay);
  await eventually(async () => ((await leading(one)) ? true : undefined), 20_000, 'the relayed manager to lead');
  const two = await manager('c2', 6);
  await create('before-cut');
  await synced('before-cut', 20_000);
  relay.blackhole();
  const cutAt = Date.now();
  let exitedAt = 0;
  let tookOverAt = 0;
  await eventually(
    async () => {
      if (!exitedAt && one.child.exitCode !== null) exitedAt = Date.now();
      if (!tookOverAt && (await leading(two))) tookOverAt = Date.now();
      return exitedAt && tookOverAt ? true : undefined;
    },
    30_000,
    'the cut-off leader to exit and the other to take over',
    100,
  );
  expect(one.child.exitCode).toBe(1);
  expect(one.logs()).toContain('lost the lease; exiting');
  // One writer at a time: the old leader was gone before the new one started.
  expect(exitedAt).toBeLessThan(tookOverAt);
  expect(exitedAt - cutAt).toBeLessThan(6_000);
  relay.restore();
  await create('after-cut');
  await synced('after-cut', 20_000);
  await two.stop('SIGKILL');
});

test('a leader frozen (SIGSTOP) while the other takes over writes nothing when it resumes, and exits', async () => {
  const one = await manager('d1', 5);
  await eventually(async () => ((await leading(one)) ? true : undefined), 20_000, 'the first to lead');
  const two = await manager('d2', 5);
  await create('before-freeze');
  await synced('before-freeze', 20_000);
  one.child.kill('SIGSTOP');
  await eventually(async () => ((await leading(two)) ? true : undefined), 30_000, 'the second to take over');
  // Work for both: the frozen one has these in its watch stream when it wakes up.
  for (const n of ['during-1', 'during-2', 'during-3']) await create(n);
  for (const n of ['during-1', 'during-2', 'during-3']) await synced(n, 20_000);
  const eventsBefore = (await eventsBy('manager-d1')).length;
  one.child.kill('SIGCONT');
  await eventually(async () => (one.child.exitCode !== null ? true : undefined), 20_000, 'the stale leader to exit');
  expect(one.child.exitCode).toBe(1);
  expect((await eventsBy('manager-d1')).length).toBe(eventsBefore);
  for (const n of ['during-1', 'during-2', 'during-3']) {
    const events = (await k.core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${n}` }))
      .items;
    expect(events.map((e) => e.reportingInstance)).not.toContain('manager-d1');
  }
  await two.stop('SIGKILL');
});
