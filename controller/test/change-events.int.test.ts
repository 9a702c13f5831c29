// Issue #28 end to end: Key Vault's events reach the cluster through the stack's Azurite queue,
// the real provider-azure process reads it with an identity that holds the queue role only, and
// the real manager refreshes the SecretSyncs that use the changed object — with polling at 3 600 s,
// so only an event can bring the new version. At-least-once delivery (duplicates, reordering,
// delays, foreign messages) costs no extra Secret write and never brings back an older value; a
// notice for an object no SecretSync uses costs no Key Vault read; a manager started afresh hears
// the next change from the keys the status kept, without a read; and with the queue refusing
// the provider's identity or out of reach, SecretSyncs sync by polling while a metric and a log
// line say why events are off.
import { Watch } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricSum } from '../../bench/lib.js';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { changeQueueFlags, vaultEventsQueue } from '../../test/helpers/change-queue.js';
import { azureParameters, secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';
import type { SecretSync } from '../src/api.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const run = Date.now().toString(36);
const vault = `ce-${run}`;
const queue = `ce-${run}`;
/** Only events can bring a new version within a test: the guide's default rotation interval. */
const HOUR_POLLING = ['--rotation-poll-interval-seconds=3600'];
/** Generous bound for "within seconds" on a loaded machine: a bound, not a measurement (see bench). */
const SECONDS = 30_000;

let ns: Awaited<ReturnType<typeof tempNamespace>>;
let socketDir: string;
let tokenFile: string;
let provider: RunningProviderProcess | undefined;
let manager: RunningManager | undefined;
let subscription: string;
/** The synced workloads' identity: Key Vault Secrets User on the vault. */
let workloadId: string;
/** The queue reader: "Storage Queue Data Message Processor" on the queue, nothing in the vault. */
let queueReader: string;
/** Federated with the same ServiceAccount, without any queue role. */
let roleless: string;
/** Every value the watched Secrets held, in order, by Secret name. */
const seen = new Map<string, string[]>();
let stopWatch: AbortController | undefined;

const providerMetric = async (name: string, labels: Record<string, string> = {}) =>
  metricSum(await provider!.metrics(), name, labels);
const managerMetric = async (name: string, labels: Record<string, string> = {}) =>
  metricSum(await manager!.metrics(), name, labels);
/** Reads of secret values by anyone in the test vault, as the emulator counts them. */
const vaultReads = async () => (await azure.stats()).vaultRequests[`${vault} secrets/get 200`] ?? 0;

const queueFlags = (o: { url: string; clientId: string }) => [
  ...changeQueueFlags({ ...o, tenantId: azure.tenantId, tokenFile }),
  '--change-queue-poll-seconds=1',
];

async function restart(o: { providerArgs: string[]; managerArgs: string[] }): Promise<void> {
  await manager?.stop();
  await provider?.stop();
  provider = await startProvider({ socketDir, args: o.providerArgs });
  manager = await startManager({ namespace: ns.name, providerDir: socketDir, args: o.managerArgs });
}

const readyOf = async (name: string) =>
  (
    (await k.objects.read({
      apiVersion: 'secret-sync.x-k8s.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name, namespace: ns.name },
    })) as SecretSync
  ).status?.conditions?.find((c) => c.type === 'Ready');

/** Waits until the provider has handled `n` more queue messages with this result than `from`. */
async function handled(result: string, o: { from: number; n: number }): Promise<void> {
  await eventually(
    async () => (await providerMetric('change_queue_messages_total', { result })) - o.from >= o.n || undefined,
    SECONDS,
    `${o.n} more queue messages handled as ${result}`,
  );
}

/** `az identity create` + a federated credential for a ServiceAccount of the test namespace. */
async function federated(name: string, serviceAccount: string): Promise<string> {
  const id = await azure.createWorkloadIdentity({
    name: `${name}-${ns.name}`,
    issuer: info.k8s.issuer,
    namespace: ns.name,
    serviceAccount,
  });
  return id.clientId;
}

async function secretValue(name: string): Promise<string | undefined> {
  const s = await k.core.readNamespacedSecret({ name, namespace: ns.name }).catch(() => undefined);
  const v = s?.data?.value;
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

async function holds(name: string, value: string, timeoutMs = SECONDS): Promise<void> {
  await eventually(
    async () => ((await secretValue(name)) === value ? true : undefined),
    timeoutMs,
    `Secret ${name} holding ${value}`,
  );
}

/** A SecretSync `name` whose Secret key `value` is the Key Vault secret `object`. */
async function syncObject(name: string, object: string): Promise<void> {
  const parameters = azureParameters({
    keyvaultName: vault,
    tenantID: azure.tenantId,
    clientID: workloadId,
    objects: [{ objectName: object, objectType: 'secret' }],
  });
  for (const body of [
    secretProviderClass({ name, provider: 'azure', parameters }),
    secretSync({ name, sa: 'workload', spc: name, data: [{ sourcePath: object, targetKey: 'value' }] }),
  ])
    await k.objects.create({ ...body, metadata: { ...body.metadata, namespace: ns.name } });
}

/** Every Secret write the apiserver saw, in order: a real write shows as one value in `seen`. */
async function watchSecrets(): Promise<AbortController> {
  return new Watch(k.kc).watch(
    `/api/v1/namespaces/${ns.name}/secrets`,
    {},
    (phase: string, obj: { metadata?: { name?: string }; data?: Record<string, string> }) => {
      const name = obj.metadata?.name;
      const v = obj.data?.value;
      if (!name || v === undefined || (phase !== 'ADDED' && phase !== 'MODIFIED')) return;
      seen.set(name, [...(seen.get(name) ?? []), Buffer.from(v, 'base64').toString('utf8')]);
    },
    () => undefined,
  );
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'events');
  for (const name of ['workload', 'provider'])
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
  await azure.createVault(vault);
  workloadId = await federated('ce-workload', 'workload');
  await azure.assignRole('Key Vault Secrets User', workloadId, vault);

  // The operator's part (README "Change events"): a queue, the vault's event subscription into it,
  // and the provider's own identity with the queue role on that queue only, its projected token
  // written where the chart mounts it.
  socketDir = mkdtempSync(join(tmpdir(), 'sss-events-'));
  tokenFile = join(socketDir, 'provider-token');
  const events = await vaultEventsQueue({
    core: k.core,
    azure,
    vault,
    queue,
    reader: { name: `ce-queue-${ns.name}`, namespace: ns.name, serviceAccount: 'provider' },
    tokenFile,
  });
  subscription = events.subscription;
  queueReader = events.changeQueue.clientId;
  roleless = await federated('ce-noqueue', 'provider');

  // First versions before anyone reads the queue: their events are handled (and acted on by
  // nobody) before the tests start counting reads.
  await azure.setSecret(vault, 'db-password', 'v1');
  await azure.setSecret(vault, 'api-key', 'k1');
  await restart({
    providerArgs: queueFlags({ url: azure.queueUrl(queue), clientId: queueReader }),
    managerArgs: HOUR_POLLING,
  });
  await handled('notified', { from: 0, n: 2 });
  stopWatch = await watchSecrets();
});

afterAll(async () => {
  stopWatch?.abort();
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
});

describe('events on, polling at 3 600 s', () => {
  let readsPerChange = 0;

  test('a new version reaches the Secret within seconds, with one write and one read', async () => {
    await syncObject('app', 'db-password');
    await holds('app', 'v1');
    await eventually(
      async () => (await managerMetric('secretsync_change_source_receiving', { provider: 'azure' })) === 1 || undefined,
      SECONDS,
      'the manager hearing that the provider receives events',
    );
    const reads = await vaultReads();
    const writes = await managerMetric('secretsync_secret_writes_total');

    await azure.setSecret(vault, 'db-password', 'v2');
    await holds('app', 'v2');

    readsPerChange = (await vaultReads()) - reads;
    expect(readsPerChange).toBe(1);
    expect((await managerMetric('secretsync_secret_writes_total')) - writes).toBe(1);
    expect(await managerMetric('secretsync_change_enqueued_total', { provider: 'azure' })).toBeGreaterThanOrEqual(1);
    expect(seen.get('app')).toEqual(['v1', 'v2']);
    // The provider's queue identity never touched the vault: it has no role there.
    expect(await providerMetric('change_events_receiving')).toBe(1);
  });

  test('duplicate deliveries: one write, the same value', async () => {
    await azure.setEventDelivery(subscription, { copies: 5 });
    const dups = await providerMetric('change_queue_messages_total', { result: 'duplicate' });
    const writes = await managerMetric('secretsync_secret_writes_total');
    await azure.setSecret(vault, 'db-password', 'v3');
    await holds('app', 'v3');
    await handled('duplicate', { from: dups, n: 4 });
    await azure.setEventDelivery(subscription, { copies: 1 });
    expect((await managerMetric('secretsync_secret_writes_total')) - writes).toBe(1);
    expect(seen.get('app')).toEqual(['v1', 'v2', 'v3']);
  });

  test('reordered and delayed deliveries: the newest value, never an older one after it', async () => {
    await azure.setEventDelivery(subscription, { hold: true });
    const notified = await providerMetric('change_queue_messages_total', { result: 'notified' });
    const writes = await managerMetric('secretsync_secret_writes_total');
    await azure.setSecret(vault, 'db-password', 'v4');
    await azure.setSecret(vault, 'db-password', 'v5');
    // Newest first: v5's event, then v4's.
    expect(await azure.releaseHeldEvents(subscription)).toBe(2);
    await azure.setEventDelivery(subscription, { hold: false });
    await holds('app', 'v5');
    await handled('notified', { from: notified, n: 2 });

    await azure.setEventDelivery(subscription, { delayMs: 1_500 });
    await azure.setSecret(vault, 'db-password', 'v6');
    await holds('app', 'v6');
    await azure.setEventDelivery(subscription, { delayMs: 0 });

    expect((await managerMetric('secretsync_secret_writes_total')) - writes).toBe(2);
    expect(seen.get('app')).toEqual(['v1', 'v2', 'v3', 'v5', 'v6']);
  });

  test('messages that are not Key Vault version events change nothing and read nothing', async () => {
    const refused = async () =>
      (await providerMetric('change_queue_messages_total', { result: 'not_keyvault' })) +
      (await providerMetric('change_queue_messages_total', { result: 'malformed' })) +
      (await providerMetric('change_queue_messages_total', { result: 'ignored' }));
    const before = { refused: await refused(), reads: await vaultReads() };
    const writes = await managerMetric('secretsync_secret_writes_total');
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');
    const topic = `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${vault}`;
    for (const text of [
      'not an event at all',
      b64({ id: 'blob-1', eventType: 'Microsoft.Storage.BlobCreated', subject: '/blobServices/default', data: {} }),
      b64({ id: 'policy-1', topic, eventType: 'Microsoft.KeyVault.VaultAccessPolicyChanged', data: {} }),
      // Names the synced object but its fields disagree (another vault in data.Id): refused whole.
      b64({
        id: 'forged-1',
        topic,
        eventType: 'Microsoft.KeyVault.SecretNewVersionCreated',
        data: {
          Id: 'https://elsewhere.vault.azure.net/secrets/db-password/0',
          VaultName: vault,
          ObjectName: 'db-password',
        },
      }),
    ])
      await azure.injectQueueMessage(queue, text);
    await eventually(
      async () => (await refused()) - before.refused >= 4 || undefined,
      SECONDS,
      'the four messages handled',
    );
    expect(await vaultReads()).toBe(before.reads);
    expect((await managerMetric('secretsync_secret_writes_total')) - writes).toBe(0);
    expect(await secretValue('app')).toBe('v6');
  });

  test('a notice for an object no SecretSync uses costs no Key Vault read', async () => {
    await syncObject('api', 'api-key');
    await holds('api', 'k1');
    const notices = await managerMetric('secretsync_change_notices_total', { provider: 'azure' });
    const enqueued = await managerMetric('secretsync_change_enqueued_total', { provider: 'azure' });
    const reads = await vaultReads();

    await azure.setSecret(vault, 'unused', 'nobody reads this');
    await eventually(
      async () =>
        (await managerMetric('secretsync_change_notices_total', { provider: 'azure' })) > notices || undefined,
      SECONDS,
      "the manager receiving the unused object's notice",
    );
    expect(await managerMetric('secretsync_change_enqueued_total', { provider: 'azure' })).toBe(enqueued);
    // Then a change that is used: its read is the only one since.
    await azure.setSecret(vault, 'api-key', 'k2');
    await holds('api', 'k2');
    expect((await vaultReads()) - reads).toBe(readsPerChange);
    expect(seen.get('app')?.at(-1)).toBe('v6');
  });
});

describe('a manager that starts afresh (a crash, an upgrade, a new leader)', () => {
  test('hears the next change at once, from the keys the status kept, and reads nothing to learn them', async () => {
    const synced = await k.objects.read({
      apiVersion: 'secret-sync.x-k8s.io/v1alpha1',
      kind: 'SecretSync',
      metadata: { name: 'app', namespace: ns.name },
    });
    expect((synced as SecretSync).status?.syncedObjectVersions?.[0]?.changeKey).toMatch(/^[\x21-\x7e]{1,128}$/);
    const reads = await vaultReads();
    await manager!.stop('SIGKILL');
    manager = await startManager({ namespace: ns.name, providerDir: socketDir, args: HOUR_POLLING });
    await eventually(
      async () => (await managerMetric('secretsync_change_source_receiving', { provider: 'azure' })) === 1 || undefined,
      SECONDS,
      'the new manager hearing that the provider receives events',
    );
    // Both SecretSyncs are up to date: the new manager keeps their hourly schedule, no Mount.
    expect(await vaultReads()).toBe(reads);
    expect(await managerMetric('secretsync_change_keys')).toBeGreaterThanOrEqual(2);

    await azure.setSecret(vault, 'db-password', 'v7');
    await holds('app', 'v7');
    expect((await vaultReads()) - reads).toBe(1);
    expect(seen.get('app')?.slice(-2)).toEqual(['v6', 'v7']);
  });
});

describe('events off: SecretSyncs sync by polling, and the metrics and logs say why', () => {
  const POLLING = ['--rotation-poll-interval-seconds=3'];

  /** The manager's log lines saying the provider receives no events, with the provider's reason. */
  const offLines = () =>
    manager!
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { message?: string; reason?: string; providerMessage?: string })
      .filter((l) => l.message?.includes('the provider receives no change events'));

  async function expectOff(reason: string): Promise<void> {
    await eventually(
      async () => (offLines().some((l) => l.reason === reason) ? true : undefined),
      SECONDS,
      `the manager logging events off (${reason})`,
    );
    expect(await managerMetric('secretsync_change_source_receiving', { provider: 'azure' })).toBe(0);
    expect(await managerMetric('secretsync_change_stream_up', { provider: 'azure' })).toBe(1);
    expect(await providerMetric('change_events_receiving')).toBe(0);
    expect(await providerMetric('change_queue_errors_total', { reason })).toBeGreaterThan(0);
    expect(offLines().find((l) => l.reason === reason)?.message).toContain('SecretSyncs are polled meanwhile');
  }

  async function syncsByPolling(value: string): Promise<void> {
    await azure.setSecret(vault, 'db-password', value);
    await holds('app', value);
    expect((await readyOf('app'))?.status).toBe('True');
  }

  test("the provider's identity lacks the queue role: Forbidden, and polling goes on", async () => {
    await restart({
      providerArgs: queueFlags({ url: azure.queueUrl(queue), clientId: roleless }),
      managerArgs: POLLING,
    });
    await expectOff('Forbidden');
    expect(offLines().find((l) => l.reason === 'Forbidden')?.providerMessage).toContain(
      'Storage Queue Data Message Processor',
    );
    await syncsByPolling('p1');
  });

  test('the queue is out of reach: QueueUnreachable, and polling goes on', async () => {
    await restart({
      providerArgs: queueFlags({ url: `https://down${run}.queue.core.windows.net/${queue}`, clientId: queueReader }),
      managerArgs: POLLING,
    });
    await expectOff('QueueUnreachable');
    await syncsByPolling('p2');
  });
});
