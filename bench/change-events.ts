// `npm run bench -- --events`: change events at scale (issue #28). SecretSyncs spread over objects
// of one vault, polling at the guide's 3 600 s, Key Vault's events reaching provider-azure through
// the stack's Azurite queue. Measured: for a new version of one object, the time from the vault
// write to every Secret holding it (p50, p99) and the Key Vault reads it cost; then a burst of
// events, mostly duplicates and objects nobody uses: reads, CPU and memory of both processes.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../test/env/azure/client.js';
import { changeQueueFlags, vaultEventsQueue } from '../test/helpers/change-queue.js';
import { secretSync } from '../test/helpers/fixtures.js';
import { eventually, kube } from '../test/helpers/kube.js';
import {
  metricSum,
  percentile,
  pool,
  processStats,
  round,
  oneSecretClass,
  startPair,
  type OwnStackScenario,
} from './lib.js';

export interface EventSizes {
  secretSyncs: number;
  objects: number;
  changes: number;
  /** Distinct events in the burst; each delivered `burstCopies` times. */
  burstEvents: number;
  burstCopies: number;
  /** Of the burst's distinct events, how many are for objects in use. */
  burstUsed: number;
}

export const EVENT_SIZES: { quick: EventSizes; full: EventSizes } = {
  quick: { secretSyncs: 200, objects: 20, changes: 10, burstEvents: 20, burstCopies: 10, burstUsed: 2 },
  full: { secretSyncs: 1000, objects: 100, changes: 50, burstEvents: 100, burstCopies: 10, burstUsed: 10 },
};

const NS = 'events';
const VAULT = 'events-kv';
const QUEUE = 'kv-events';

/** The latest value of every Secret of the namespace and when it arrived, from a watch. */
class SecretValues {
  readonly latest = new Map<string, { value: string; at: number }>();
  private abort?: { abort(): void };

  constructor(private readonly kc: KubeConfig) {}

  async start(): Promise<void> {
    this.abort = await new Watch(this.kc).watch(
      `/api/v1/namespaces/${NS}/secrets`,
      {},
      (_type: string, s: { metadata?: { name?: string }; data?: Record<string, string> }) => {
        const v = s.data?.v;
        if (s.metadata?.name && v !== undefined)
          this.latest.set(s.metadata.name, { value: Buffer.from(v, 'base64').toString(), at: performance.now() });
      },
      () => undefined,
    );
  }

  /** When the last of `names` came to hold `value`, or undefined while one does not. */
  allHold(names: string[], value: string): number | undefined {
    let last = 0;
    for (const n of names) {
      const l = this.latest.get(n);
      if (l?.value !== value) return undefined;
      last = Math.max(last, l.at);
    }
    return last;
  }

  stop(): void {
    this.abort?.abort();
  }
}

const objectName = (o: number) => `o${o}`;
const syncName = (i: number) => `sync-${i}`;

export async function changeEventsScenario(o: OwnStackScenario<EventSizes>): Promise<Record<string, unknown>> {
  const { stack, sizes: S, say } = o;
  const k = kube();
  const azure = new AzureStack(stack.info);
  const dir = mkdtempSync(join(tmpdir(), 'sss-bench-events-'));
  mkdirSync(join(dir, 'providers'));
  await azure.createVault(VAULT);
  await k.core.createNamespace({ body: { metadata: { name: NS } } });
  for (const name of ['app', 'provider'])
    await k.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } });
  const federated = (name: string, serviceAccount: string) =>
    azure.createWorkloadIdentity({ name, issuer: stack.info.k8s.issuer, namespace: NS, serviceAccount });
  const app = await federated('events-app', 'app');
  await azure.assignRole('Key Vault Secrets User', app.clientId, VAULT);
  const { subscription, changeQueue } = await vaultEventsQueue({
    core: k.core,
    azure,
    vault: VAULT,
    queue: QUEUE,
    reader: { name: 'events-queue', namespace: NS, serviceAccount: 'provider' },
    tokenFile: join(dir, 'provider-token'),
  });

  await pool(
    Array.from({ length: S.objects }, (_, j) => j),
    8,
    async (j) => {
      await azure.setSecret(VAULT, objectName(j), `${objectName(j)}-v0`);
      await oneSecretClass(k, azure, {
        name: `spc-${j}`,
        namespace: NS,
        vault: VAULT,
        clientId: app.clientId,
        objectName: objectName(j),
      });
    },
  );
  const values = new SecretValues(k.kc);
  await values.start();
  let pair: Awaited<ReturnType<typeof startPair>> | undefined;
  try {
    pair = await startPair({
      dir,
      start: o.start,
      namespace: NS,
      providerArgs: ['--log-level=info', ...changeQueueFlags(changeQueue)],
      managerArgs: ['--rotation-poll-interval-seconds=3600', '--workers=16', '--log-level=info'],
    });
    const { provider, manager } = pair;
    say(`events: ${S.secretSyncs} SecretSyncs over ${S.objects} objects of one vault, polling at 3600 s`);
    await pool(
      Array.from({ length: S.secretSyncs }, (_, i) => i),
      16,
      async (i) => {
        const body = secretSync({
          name: syncName(i),
          sa: 'app',
          spc: `spc-${i % S.objects}`,
          data: [{ sourcePath: objectName(i % S.objects), targetKey: 'v' }],
        });
        await k.objects.create({ ...body, metadata: { ...body.metadata, namespace: NS } });
      },
    );
    const users = (j: number) =>
      Array.from({ length: S.secretSyncs }, (_, i) => i)
        .filter((i) => i % S.objects === j)
        .map(syncName);
    for (let j = 0; j < S.objects; j++)
      await eventually(
        async () => (values.allHold(users(j), `${objectName(j)}-v0`) ? true : undefined),
        300_000,
        'the initial sync',
        500,
      );
    const receiving = async () =>
      metricSum(await manager.metrics(), 'secretsync_change_source_receiving', { provider: 'azure' });
    await eventually(async () => ((await receiving()) === 1 ? true : undefined), 60_000, 'events on', 250);
    const reads = async () => (await azure.stats()).vaultRequests[`${VAULT} secrets/get 200`] ?? 0;

    // One new version at a time: vault write → every Secret holding it.
    const latencies: number[] = [];
    const readsPerChange: number[] = [];
    for (let c = 0; c < S.changes; c++) {
      const j = (c * 7) % S.objects;
      const value = `${objectName(j)}-v${c + 1}`;
      const before = await reads();
      const t0 = performance.now();
      await azure.setSecret(VAULT, objectName(j), value);
      const at = await eventually(async () => values.allHold(users(j), value), 60_000, `change ${c}`, 20);
      latencies.push(at - t0);
      // Reads still under way for this change land before the next one starts.
      await new Promise((r) => setTimeout(r, 300));
      readsPerChange.push((await reads()) - before);
    }
    say(
      `events: write → every Secret of the object p50 ${round(percentile(latencies, 50))} ms, p99 ${round(percentile(latencies, 99))} ms; reads per change ${JSON.stringify([...new Set(readsPerChange)])}`,
    );

    // A burst: each event delivered burstCopies times, most for objects nobody uses.
    const cpu0 = { manager: processStats(manager.child.pid!), provider: processStats(provider.child.pid!) };
    const burstReads = await reads();
    const notices0 = metricSum(await provider.metrics(), 'change_queue_messages_total');
    await azure.setEventDelivery(subscription, { copies: S.burstCopies });
    const t0 = performance.now();
    const used: number[] = [];
    await pool(
      Array.from({ length: S.burstEvents }, (_, e) => e),
      8,
      async (e) => {
        if (e < S.burstUsed) {
          used.push(e);
          await azure.setSecret(VAULT, objectName(e), `${objectName(e)}-burst`);
        } else await azure.setSecret(VAULT, `unused-${e}`, 'nobody syncs this');
      },
    );
    const messages = S.burstEvents * S.burstCopies;
    await eventually(
      async () =>
        metricSum(await provider.metrics(), 'change_queue_messages_total') - notices0 >= messages &&
        used.every((j) => values.allHold(users(j), `${objectName(j)}-burst`))
          ? true
          : undefined,
      120_000,
      'the burst handled',
      100,
    );
    const burstSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1_000));
    await azure.setEventDelivery(subscription, { copies: 1 });
    const cpu1 = { manager: processStats(manager.child.pid!), provider: processStats(provider.child.pid!) };
    const providerText = await provider.metrics();
    const burst = {
      messages,
      distinctEvents: S.burstEvents,
      usedObjects: S.burstUsed,
      seconds: round(burstSeconds),
      keyVaultReads: (await reads()) - burstReads,
      // The provider's counters since it started: the initial versions' and the 50 changes' events too.
      messagesByResultSinceStart: Object.fromEntries(
        ['notified', 'duplicate', 'not_keyvault', 'ignored', 'malformed'].map((r) => [
          r,
          metricSum(providerText, 'change_queue_messages_total', { result: r }),
        ]),
      ),
      cpuSeconds: {
        manager: round(cpu1.manager.cpuSeconds - cpu0.manager.cpuSeconds, 2),
        provider: round(cpu1.provider.cpuSeconds - cpu0.provider.cpuSeconds, 2),
      },
      rssMb: { manager: cpu1.manager.rssMb, provider: cpu1.provider.rssMb },
      peakRssMb: { manager: cpu1.manager.peakRssMb, provider: cpu1.provider.peakRssMb },
    };
    say(
      `events: burst of ${messages} messages (${S.burstUsed} used objects) handled in ${burst.seconds} s; ${burst.keyVaultReads} reads; CPU manager ${burst.cpuSeconds.manager} s, provider ${burst.cpuSeconds.provider} s`,
    );
    return {
      what: `${S.secretSyncs} SecretSyncs over ${S.objects} objects of one vault (${S.secretSyncs / S.objects} per object), --rotation-poll-interval-seconds=3600, events through the stack's Azurite queue: a new version of one object → every Secret holding it, ${S.changes} changes one at a time; then ${S.burstEvents} events each delivered ${S.burstCopies} times, ${S.burstUsed} of them for objects in use`,
      ...S,
      writeToSecretsMs: {
        p50: round(percentile(latencies, 50)),
        p99: round(percentile(latencies, 99)),
        max: round(Math.max(...latencies)),
      },
      keyVaultReadsPerChange: {
        min: Math.min(...readsPerChange),
        max: Math.max(...readsPerChange),
        mean: round(readsPerChange.reduce((a, b) => a + b, 0) / readsPerChange.length, 2),
      },
      burst,
    };
  } finally {
    values.stop();
    await pair?.stop();
  }
}
