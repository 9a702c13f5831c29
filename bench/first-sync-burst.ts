// `npm run bench -- --burst`: the first sync of a burst of new SecretSyncs (issue #28). Many
// SecretSyncs created at once over the objects of one vault, in namespaces each with its own
// ServiceAccount and workload identity, so the distinct (vault, object, identity) are objects ×
// namespaces. Measured at the Key Vault emulator: the requests of the whole first sync, by
// operation, and the time until every SecretSync is synced; once with provider-azure's default
// --read-share-seconds, once with 0 (only reads in flight joined), and once with change events on
// (the vault's events received, so its reads are shared until an event ends them, at most
// --read-share-seconds-with-events), each with fresh processes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../controller/src/api.js';
import { AzureStack } from '../test/env/azure/client.js';
import { changeQueueFlags, vaultEventsQueue } from '../test/helpers/change-queue.js';
import { secretSync } from '../test/helpers/fixtures.js';
import { eventually, kube, type Kube } from '../test/helpers/kube.js';
import {
  Arrivals,
  metricSum,
  pool,
  readyWith,
  round,
  timeout,
  oneSecretClass,
  startPair,
  type OwnStackScenario,
} from './lib.js';

export interface BurstSizes {
  secretSyncs: number;
  objects: number;
  /** Each its own ServiceAccount and workload identity. */
  namespaces: number;
  /** SecretSyncs created at a time. */
  createConcurrency: number;
}

export const BURST_SIZES: { quick: BurstSizes; full: BurstSizes } = {
  quick: { secretSyncs: 200, objects: 10, namespaces: 4, createConcurrency: 32 },
  full: { secretSyncs: 1000, objects: 20, namespaces: 10, createConcurrency: 32 },
};

/** The provider's default (provider-azure/src/config.ts), then none, then the default with events on. */
const RUNS: { shareSeconds: number; events: boolean }[] = [
  { shareSeconds: 2, events: false },
  { shareSeconds: 0, events: false },
  { shareSeconds: 2, events: true },
];
const VAULT = 'burst-kv';
const QUEUE = 'burst-events';
const objectName = (j: number) => `b${j}`;

interface Run {
  label: string;
  shareSeconds: number;
  /** The flags of provider-azure's change queue, when the run has events on. */
  changeQueue?: string[];
  namespaces: string[];
}

/** Namespaces of one run, each with ServiceAccount `app`, its own identity and a class per object. */
async function seedRun(o: { k: Kube; azure: AzureStack; issuer: string; run: Run; objects: number }): Promise<void> {
  const { k, azure, run } = o;
  for (const ns of run.namespaces) {
    await k.core.createNamespace({ body: { metadata: { name: ns } } });
    await k.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
    const id = await azure.createWorkloadIdentity({ name: ns, issuer: o.issuer, namespace: ns, serviceAccount: 'app' });
    await azure.assignRole('Key Vault Secrets User', id.clientId, VAULT);
    await pool(
      Array.from({ length: o.objects }, (_, j) => j),
      8,
      (j) =>
        oneSecretClass(k, azure, {
          name: `spc-${j}`,
          namespace: ns,
          vault: VAULT,
          clientId: id.clientId,
          objectName: objectName(j),
        }),
    );
  }
}

function diff(now: Record<string, number>, before: Record<string, number>) {
  const byOperation: Record<string, number> = {};
  for (const [key, v] of Object.entries(now)) {
    const d = v - (before[key] ?? 0);
    if (d > 0 && key.startsWith(`${VAULT} `)) byOperation[key.slice(VAULT.length + 1)] = d;
  }
  return byOperation;
}

/**
 * The vault's events into a queue of their own, read by an identity with the queue role only (its
 * ServiceAccount `provider` in the run's first namespace): provider-azure's flags to read it.
 * Subscribed after the objects were written, so the queue holds only what the run writes.
 */
async function eventQueue(o: { k: Kube; azure: AzureStack; run: Run }): Promise<string[]> {
  const { k, azure, run } = o;
  const ns = run.namespaces[0]!;
  await k.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'provider' } } });
  const { changeQueue } = await vaultEventsQueue({
    core: k.core,
    azure,
    vault: VAULT,
    queue: QUEUE,
    reader: { name: `${run.label}-queue`, namespace: ns, serviceAccount: 'provider' },
    tokenFile: join(mkdtempSync(join(tmpdir(), `sss-bench-${run.label}-`)), 'provider-token'),
  });
  return changeQueueFlags(changeQueue);
}

/**
 * With events on: the manager's change stream attached and an event of the vault received (a
 * version of an object no SecretSync uses), so the provider counts the vault as covered.
 */
async function eventsCovering(o: { azure: AzureStack; pair: Awaited<ReturnType<typeof startPair>> }): Promise<void> {
  const { azure, pair } = o;
  await eventually(
    async () =>
      metricSum(await pair.manager.metrics(), 'secretsync_change_source_receiving', { provider: 'azure' }) === 1
        ? true
        : undefined,
    60_000,
    'the manager watching the change queue',
    250,
  );
  await azure.setSecret(VAULT, 'burst-seed', 'seed');
  await eventually(
    async () => (metricSum(await pair.provider.metrics(), 'change_events_covered_vaults') >= 1 ? true : undefined),
    60_000,
    "the vault's first event received",
    250,
  );
}

/** One burst with fresh processes: the manager sees only this run's SecretSyncs (its controller name). */
async function burst(o: {
  k: Kube;
  azure: AzureStack;
  run: Run;
  S: BurstSizes;
  start: OwnStackScenario<BurstSizes>['start'];
  say: (m: string) => void;
}): Promise<Record<string, unknown>> {
  const { k, azure, run, S } = o;
  const dir = mkdtempSync(join(tmpdir(), `sss-bench-burst-${run.label}-`));
  const arrivals = new Arrivals(
    k.kc,
    `/apis/${SYNC_GROUP}/${SYNC_VERSION}/${SYNC_PLURAL}`,
    readyWith(['CreateSucceeded']),
    `bench-batch=${run.label}`,
  );
  let pair: Awaited<ReturnType<typeof startPair>> | undefined;
  try {
    pair = await startPair({
      dir,
      start: o.start,
      namespace: '',
      providerArgs: ['--log-level=info', `--read-share-seconds=${run.shareSeconds}`, ...(run.changeQueue ?? [])],
      managerArgs: ['--workers=16', '--log-level=info', `--controller-name=${run.label}`],
    });
    if (run.changeQueue) await eventsCovering({ azure, pair });
    await arrivals.start();
    const before = (await azure.stats()).vaultRequests;
    const t0 = performance.now();
    await pool(
      Array.from({ length: S.secretSyncs }, (_, i) => i),
      S.createConcurrency,
      async (i) => {
        // SecretSync i: namespace i mod N, object ⌊i / N⌋ mod objects — every (object, identity) alike.
        const ns = run.namespaces[i % S.namespaces]!;
        const body = secretSync({
          name: `s-${i}`,
          sa: 'app',
          spc: `spc-${Math.floor(i / S.namespaces) % S.objects}`,
          controllerName: run.label,
          metadataLabels: { 'bench-batch': run.label },
          data: [{ sourcePath: objectName(Math.floor(i / S.namespaces) % S.objects), targetKey: 'v' }],
        });
        await k.objects.create({ ...body, metadata: { ...body.metadata, namespace: ns } });
      },
    );
    const createSeconds = (performance.now() - t0) / 1000;
    await timeout(arrivals.count(S.secretSyncs), 10 * 60_000, `${S.secretSyncs} SecretSyncs to sync`);
    const seconds = (performance.now() - t0) / 1000;
    const byOperation = diff((await azure.stats()).vaultRequests, before);
    const pm = await pair.provider.metrics();
    const result = {
      readShareSeconds: run.shareSeconds,
      changeEvents: run.changeQueue !== undefined,
      keyVaultReads: byOperation['secrets/get 200'] ?? 0,
      keyVaultRequestsAtVault: Object.values(byOperation).reduce((a, b) => a + b, 0),
      keyVaultRequestsByOperation: byOperation,
      providerMounts: metricSum(pm, 'mount_duration_seconds_count'),
      providerReadLookups: Object.fromEntries(
        ['hit', 'shared', 'coalesced', 'miss'].map((r) => [
          r,
          metricSum(pm, 'keyvault_cache_lookups_total', { result: r }),
        ]),
      ),
      secondsToAllSynced: round(seconds),
      createSeconds: round(createSeconds),
    };
    o.say(
      `burst, --read-share-seconds=${run.shareSeconds}${run.changeQueue ? ', events on' : ''}: ${S.secretSyncs} synced in ${result.secondsToAllSynced} s; ${result.keyVaultReads} Key Vault reads (${result.keyVaultRequestsAtVault} requests at the vault: ${JSON.stringify(byOperation)})`,
    );
    return result;
  } finally {
    arrivals.stop();
    await pair?.stop();
  }
}

export async function firstSyncBurstScenario(o: OwnStackScenario<BurstSizes>): Promise<Record<string, unknown>> {
  const { stack, sizes: S, say } = o;
  const k = kube();
  const azure = new AzureStack(stack.info);
  await azure.createVault(VAULT);
  await pool(
    Array.from({ length: S.objects }, (_, j) => j),
    8,
    async (j) => {
      await azure.setSecret(VAULT, objectName(j), `${objectName(j)}-v1`);
    },
  );
  const runs: Run[] = RUNS.map(({ shareSeconds, events }) => {
    const label = `burst-share-${shareSeconds}${events ? '-events' : ''}`;
    return {
      label,
      shareSeconds,
      namespaces: Array.from({ length: S.namespaces }, (_, n) => `${label}-${n}`),
    };
  });
  for (const [i, run] of runs.entries()) {
    await seedRun({ k, azure, issuer: stack.info.k8s.issuer, run, objects: S.objects });
    if (RUNS[i]!.events) run.changeQueue = await eventQueue({ k, azure, run });
  }
  const triples = S.objects * S.namespaces;
  say(
    `burst: ${S.secretSyncs} SecretSyncs created ${S.createConcurrency} at a time over ${S.objects} objects of one vault in ${S.namespaces} namespaces, an identity each (${triples} distinct (vault, object, identity))`,
  );
  const measured: Record<string, unknown>[] = [];
  for (const run of runs) measured.push(await burst({ k, azure, run, S, start: o.start, say }));
  return {
    what: `${S.secretSyncs} new SecretSyncs created at once (${S.createConcurrency} at a time) over ${S.objects} Key Vault secrets of one vault in ${S.namespaces} namespaces, each namespace its own ServiceAccount and workload identity; Key Vault requests at the vault for the whole first sync and the time from the first create until every SecretSync says CreateSucceeded; fresh manager and provider-azure per run, with provider-azure's --read-share-seconds at its default, at 0, and at its default with change events on (the vault's events received from a queue before the burst, so --read-share-seconds-with-events at its default applies)`,
    ...S,
    distinctVaultObjectIdentity: triples,
    runs: measured,
  };
}
