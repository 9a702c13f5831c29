// provider-azure's change events against the local stack: the Key Vault emulator publishes its
// documented events into an Azurite queue as an Event Grid subscription would, the queue front
// checks the provider's own workload identity (a ServiceAccount token exchanged at the Entra
// stand-in) against Azure RBAC, and a watcher on the provider's socket hears what changed.
import type { ChangeNotice, ChangeState } from '@secret-store-sync/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { vaultEventsQueue } from '../../test/helpers/change-queue.js';
import { azureParameters } from '../../test/helpers/fixtures.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { mountRequest, startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const run = Date.now().toString(36);
const vault = `ce-${run}`;
const queue = `ce-${run}`;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
/** The identity Mounts use (Key Vault roles), and the provider's own for the queue (a queue role only). */
let mountClientId: string;
let queueClientId: string;
let subscription: string;
/** The provider container's projected token, as the kubelet writes it. */
let tokenFile: string;
const stops: (() => Promise<unknown>)[] = [];

async function saToken(sa: string): Promise<string> {
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: ns.name,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 3600 } },
  });
  return tr.status!.token;
}

async function mount(
  objects: Record<string, string>[],
  o: {
    via?: RunningProviderProcess;
    token?: string;
    vault?: string;
    currentObjectVersions?: { id: string; version: string }[];
    /** The caller's request for a read now (a forceSynchronization). */
    fresh?: boolean;
  } = {},
) {
  return (o.via ?? provider).client.mount(
    mountRequest({
      parameters: azureParameters({
        keyvaultName: o.vault ?? vault,
        tenantID: azure.tenantId,
        clientID: mountClientId,
        objects,
      }),
      token: o.token ?? (await saToken('workload')),
      namespace: ns.name,
      serviceAccount: 'workload',
      ...(o.currentObjectVersions ? { currentObjectVersions: o.currentObjectVersions } : {}),
    }),
    30_000,
    { fresh: o.fresh ?? false },
  );
}

/** A watcher on the provider's ObjectChanges stream: what it heard so far. */
function watch(p: RunningProviderProcess) {
  const states: ChangeState[] = [];
  const notices: ChangeNotice[] = [];
  const ctl = new AbortController();
  const done = p.client.watchChanges({
    signal: ctl.signal,
    onState: (s) => states.push(s),
    onChanged: (n) => notices.push(n),
  });
  const stop = async () => {
    ctl.abort();
    await done.catch(() => {});
  };
  stops.push(stop);
  return { states, notices, stop, last: () => states.at(-1) };
}

/** Messages visible in the queue (received ones are invisible until deleted or their timeout). */
async function visible(): Promise<number> {
  return (await azure.queueAdmin(queue).peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length;
}

/** A provider reading the queue; by default the test's own, as its own queue identity. */
async function startWithQueue(o: { url?: string; clientId?: string; args?: string[] } = {}) {
  const p = await startProvider({
    args: [
      `--change-queue-url=${o.url ?? azure.queueUrl(queue)}`,
      `--change-queue-client-id=${o.clientId ?? queueClientId}`,
      `--change-queue-tenant-id=${azure.tenantId}`,
      `--change-queue-token-file=${tokenFile}`,
      ...(o.args ?? []),
    ],
  });
  stops.push(() => p.stop());
  return p;
}

/** An identity federated with one of the namespace's ServiceAccounts; its client ID. */
async function federated(tag: string, serviceAccount: string): Promise<string> {
  const identity = await azure.createWorkloadIdentity({
    name: `chev-${tag}-${run}`,
    issuer: info.k8s.issuer,
    namespace: ns.name,
    serviceAccount,
  });
  return identity.clientId;
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'chev');
  for (const name of ['workload', 'provider'])
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
  await azure.createVault(vault);
  mountClientId = await federated('m', 'workload');
  await azure.assignRole('Key Vault Secrets User', mountClientId, vault);
  tokenFile = join(mkdtempSync(join(tmpdir(), 'chev-')), 'azure-identity-token');
  const events = await vaultEventsQueue({
    core: k.core,
    azure,
    vault,
    queue,
    reader: { name: `chev-q-${run}`, namespace: ns.name, serviceAccount: 'provider' },
    tokenFile,
  });
  subscription = events.subscription;
  queueClientId = events.changeQueue.clientId;
  provider = await startWithQueue();
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await ns?.dispose();
});

test('a Mount names a change key per object that a new version can change; a pinned one gets none', async () => {
  const pinned = await azure.setSecret(vault, 'pinned', 'p1');
  await azure.setSecret(vault, 'db', 'd1');
  const res = await mount([
    { objectName: 'db', objectType: 'secret' },
    { objectName: 'pinned', objectType: 'secret', objectVersion: pinned },
  ]);
  expect(Object.keys(res.changeKeys?.keys ?? {})).toEqual(['secret/db']);
  expect(res.changeKeys?.keys['secret/db']).toMatch(/^[\x21-\x7e]{1,128}$/);
});

test('with nobody watching the queue is left alone; a watcher then hears the event and the queue empties', async () => {
  await azure.setSecret(vault, 'waiting', 'w1');
  const key = (await mount([{ objectName: 'waiting', objectType: 'secret' }])).changeKeys!.keys['secret/waiting']!;
  await azure.setSecret(vault, 'waiting', 'w2');
  await eventually(async () => ((await visible()) > 0 ? true : undefined), 20_000, 'the event in the queue');
  // Several poll intervals: a provider that read the queue would have hidden the message.
  await new Promise((r) => setTimeout(r, 3_000));
  expect(await visible()).toBeGreaterThan(0);

  const w = watch(provider);
  await eventually(async () => (w.notices.some((n) => n.keys.includes(key)) ? true : undefined), 20_000, 'the notice');
  expect(w.states[0]).toMatchObject({ receiving: false, reason: 'NotWatched' });
  expect(w.last()).toEqual({ receiving: true });
  expect(w.notices.find((n) => n.keys.includes(key))!.kind).toBe('NewVersion');
  await eventually(async () => ((await azure.queueLength(queue)) === 0 ? true : undefined), 20_000, 'queue empty');
  // The Mount the notice causes reads the new version at once (the shared read was dropped).
  const after = await mount([{ objectName: 'waiting', objectType: 'secret' }]);
  expect(after.files[0]!.contents.toString()).toBe('w2');
  await w.stop();
});

test('a duplicate storm, an older version after a newer one and foreign messages cost one notice per object', async () => {
  await azure.setSecret(vault, 'storm', 's0');
  const key = (await mount([{ objectName: 'storm', objectType: 'secret' }])).changeKeys!.keys['secret/storm']!;
  const w = watch(provider);
  await eventually(async () => (w.last()?.receiving ? true : undefined), 20_000, 'receiving');
  await azure.setEventDelivery(subscription, { copies: 5, hold: true });
  await azure.setSecret(vault, 'storm', 's1');
  await azure.setSecret(vault, 'storm', 's2');
  await azure.injectQueueMessage(queue, 'hello, not an event');
  await azure.injectQueueMessage(
    queue,
    Buffer.from(
      JSON.stringify({ id: 'x', topic: '/t', eventType: 'Microsoft.Storage.BlobCreated', data: {} }),
    ).toString('base64'),
  );
  // Released newest first: s2's events, then s1's; each five times.
  await azure.releaseHeldEvents(subscription);
  await azure.setEventDelivery(subscription, { copies: 1, hold: false });
  await eventually(async () => ((await azure.queueLength(queue)) === 0 ? true : undefined), 20_000, 'queue empty');
  const heard = w.notices.filter((n) => n.keys.includes(key));
  // Two events (two versions), each at most once; delivered together they make a single notice.
  expect(heard.length).toBeGreaterThanOrEqual(1);
  expect(heard.length).toBeLessThanOrEqual(2);
  const metrics = await provider.metrics();
  expect(metrics).toMatch(/change_queue_messages_total\{result="duplicate"\} (?:[89]|\d\d)/);
  expect(metrics).toMatch(/change_queue_messages_total\{result="malformed"\} [1-9]/);
  expect(metrics).toMatch(/change_queue_messages_total\{result="not_keyvault"\} [1-9]/);
  // No vault or object names in the change metrics' labels.
  const changeSeries = metrics.split('\n').filter((l) => l.startsWith('change_'));
  expect(changeSeries.join('\n')).not.toMatch(/storm|ce-/);
  const after = await mount([{ objectName: 'storm', objectType: 'secret' }]);
  expect(after.files[0]!.contents.toString()).toBe('s2');
  await w.stop();
});

test('a burst of Mounts of one object reads it once within the share window; its change event ends the window', async () => {
  // A window far longer than the test, so only the event can end it.
  const shared = await startWithQueue({ args: ['--read-share-seconds=60'] });
  await azure.setSecret(vault, 'burst', 'b1');
  const gets = async () => (await azure.stats()).vaultRequests[`${vault} secrets/get 200`] ?? 0;
  const token = await saToken('workload');
  const objects = [{ objectName: 'burst', objectType: 'secret' }];
  const before = await gets();
  const first = await Promise.all(Array.from({ length: 20 }, () => mount(objects, { via: shared, token })));
  for (let i = 0; i < 5; i++) first.push(await mount(objects, { via: shared, token }));
  expect(first.map((r) => r.files[0]!.contents.toString())).toEqual(Array(25).fill('b1'));
  expect((await gets()) - before).toBe(1);

  const key = first[0]!.changeKeys!.keys['secret/burst']!;
  const w = watch(shared);
  await azure.setSecret(vault, 'burst', 'b2');
  await eventually(async () => (w.notices.some((n) => n.keys.includes(key)) ? true : undefined), 20_000, 'the notice');
  const after = await mount(objects, { via: shared, token });
  expect(after.files[0]!.contents.toString()).toBe('b2');
  expect((await gets()) - before).toBe(2);
  await w.stop();

  // A change Key Vault tells no one of: a disabled current version. Within the window only a
  // Mount whose caller asks for a fresh read (a forceSynchronization) sees it.
  await azure.disableSecretVersion(vault, 'burst', after.objectVersion[0]!.version);
  expect((await mount(objects, { via: shared, token })).files[0]!.contents.toString()).toBe('b2');
  await expect(mount(objects, { via: shared, token, fresh: true })).rejects.toMatchObject({ reason: 'SecretDisabled' });
});

test("with a vault's events received, first syncs share its reads until the object's event; a re-sync, a vault without events or a queue not read keeps the short window", async () => {
  // A short window of 1 s, and the default 60 s where events end it.
  const p = await startWithQueue({ args: ['--read-share-seconds=1'] });
  const quiet = `ceq-${run}`; // a vault of the same provider with no event subscription
  await azure.createVault(quiet);
  await azure.assignRole('Key Vault Secrets User', mountClientId, quiet);
  await azure.setSecret(quiet, 'cover', 'q1');
  const gets = async (v: string) => (await azure.stats()).vaultRequests[`${v} secrets/get 200`] ?? 0;
  const covered = async () => /^change_events_covered_vaults 1$/m.test(await p.metrics());
  const token = await saToken('workload');
  const objects = [{ objectName: 'cover', objectType: 'secret' }];
  const value = async (o: { vault?: string } = {}) =>
    (await mount(objects, { via: p, token, ...o })).files[0]!.contents.toString();
  const longerThanTheShortWindow = () => new Promise((r) => setTimeout(r, 2_500));

  await azure.setSecret(vault, 'cover', 'c1');
  const key = (await mount(objects, { via: p, token })).changeKeys!.keys['secret/cover']!;
  // Watched: the provider reads the queue, and c1's event (the vault's first) arrives.
  const w = watch(p);
  await eventually(
    async () => (w.notices.some((n) => n.keys.includes(key)) && (await covered()) ? true : undefined),
    20_000,
    "the vault's event received",
  );
  const before = { vault: await gets(vault), quiet: await gets(quiet) };
  const reads = async () => ({ vault: (await gets(vault)) - before.vault, quiet: (await gets(quiet)) - before.quiet });

  expect(await value()).toBe('c1');
  expect(await value({ vault: quiet })).toBe('q1');
  await longerThanTheShortWindow();
  expect(await value()).toBe('c1');
  expect(await value({ vault: quiet })).toBe('q1');
  // One read of the covered vault for both first syncs; the vault no event came from is read each time.
  expect(await reads()).toEqual({ vault: 1, quiet: 2 });
  expect(await covered()).toBe(true); // the quiet vault never counted
  // A re-sync (it holds a version: forced, edited, a rotation) keeps the short window: Key Vault
  // sends no event for a disable or a delete, which it may be asking about.
  const held = (await mount(objects, { via: p, token })).objectVersion;
  await longerThanTheShortWindow();
  await mount(objects, { via: p, token, currentObjectVersions: held });
  expect((await reads()).vault).toBe(2);

  // A new version: its event ends the window, and the next Mount reads it.
  const heard = () => w.notices.filter((n) => n.keys.includes(key)).length;
  const notices = heard();
  await azure.setSecret(vault, 'cover', 'c2');
  await eventually(async () => (heard() > notices ? true : undefined), 20_000, 'the notice');
  expect(await value()).toBe('c2');
  expect((await reads()).vault).toBe(3);

  // The queue not read (gone): the short window at once, for the read made just before too.
  await azure.queueAdmin(queue).delete();
  await eventually(async () => (w.last()?.reason === 'QueueNotFound' ? true : undefined), 20_000, 'QueueNotFound');
  await longerThanTheShortWindow();
  expect(await value()).toBe('c2');
  expect((await reads()).vault).toBe(4);

  // Receiving again: a read from before stays on the short window; one completed since shares again.
  await azure.createQueue(queue);
  await eventually(async () => (w.last()?.receiving ? true : undefined), 30_000, 'receiving again');
  await longerThanTheShortWindow();
  expect(await value()).toBe('c2');
  expect((await reads()).vault).toBe(5);
  await longerThanTheShortWindow();
  expect(await value()).toBe('c2');
  expect((await reads()).vault).toBe(5);
  await w.stop();
});

test('the queue gone, or the role taken away: not receiving with the reason, and receiving again once fixed', async () => {
  const w = watch(provider);
  await eventually(async () => (w.last()?.receiving ? true : undefined), 20_000, 'receiving');

  await azure.queueAdmin(queue).delete();
  await eventually(async () => (w.last()?.reason === 'QueueNotFound' ? true : undefined), 20_000, 'QueueNotFound');
  expect(w.last()!.message).toContain(queue);
  await azure.createQueue(queue);
  await eventually(async () => (w.last()?.receiving ? true : undefined), 30_000, 'receiving again');

  await azure.removeRoleAssignments(queueClientId);
  await eventually(async () => (w.last()?.reason === 'Forbidden' ? true : undefined), 30_000, 'Forbidden');
  expect(w.last()!.message).toContain('Storage Queue Data Message Processor');
  await azure.assignQueueRole('Storage Queue Data Message Processor', queueClientId, { queue });
  await eventually(async () => (w.last()?.receiving ? true : undefined), 60_000, 'receiving again');

  const logs = provider.logs();
  expect(logs).toContain('"reason":"QueueNotFound"');
  expect(logs).toContain('"reason":"Forbidden"');
  expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./);
  expect(await provider.metrics()).toMatch(/change_queue_errors_total\{reason="Forbidden"\} [1-9]/);
  await w.stop();
});

test('an identity with no queue role is Forbidden, and a queue that does not resolve is QueueUnreachable', async () => {
  const stranger = await federated('s', 'provider');
  const forbidden = await startWithQueue({ clientId: stranger });
  const w = watch(forbidden);
  await eventually(async () => (w.last()?.reason === 'Forbidden' ? true : undefined), 20_000, 'Forbidden');
  expect(w.last()!.receiving).toBe(false);

  const nowhere = await startWithQueue({ url: 'https://nosuchaccount.queue.core.windows.net/kv-events' });
  const u = watch(nowhere);
  await eventually(async () => (u.last()?.reason === 'QueueUnreachable' ? true : undefined), 20_000, 'unreachable');
});
