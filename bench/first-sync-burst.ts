// `npm run bench -- --burst`: the first sync of a burst of new SecretSyncs (issue #28). Many
// SecretSyncs created at once over the objects of one vault, in namespaces each with its own
// ServiceAccount and workload identity, so the distinct (vault, object, identity) are objects ×
// namespaces. Measured at the Key Vault emulator: the requests of the whole first sync, by
// operation, and the time until every SecretSync is synced; once with provider-azure's default
// --read-share-seconds and once with 0 (only reads in flight joined), each with fresh processes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../controller/src/api.js';
import { AzureStack } from '../test/env/azure/client.js';
import { secretSync } from '../test/helpers/fixtures.js';
import { kube, type Kube } from '../test/helpers/kube.js';
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

/** The provider's default (provider-azure/src/config.ts), then none. */
const SHARE_SECONDS = [2, 0];
const VAULT = 'burst-kv';
const objectName = (j: number) => `b${j}`;

interface Run {
  label: string;
  shareSeconds: number;
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
      providerArgs: ['--log-level=info', `--read-share-seconds=${run.shareSeconds}`],
      managerArgs: ['--workers=16', '--log-level=info', `--controller-name=${run.label}`],
    });
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
      `burst, --read-share-seconds=${run.shareSeconds}: ${S.secretSyncs} synced in ${result.secondsToAllSynced} s; ${result.keyVaultReads} Key Vault reads (${result.keyVaultRequestsAtVault} requests at the vault: ${JSON.stringify(byOperation)})`,
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
  const runs: Run[] = SHARE_SECONDS.map((shareSeconds) => {
    const label = `burst-share-${shareSeconds}`;
    return {
      label,
      shareSeconds,
      namespaces: Array.from({ length: S.namespaces }, (_, n) => `${label}-${n}`),
    };
  });
  for (const run of runs) await seedRun({ k, azure, issuer: stack.info.k8s.issuer, run, objects: S.objects });
  const triples = S.objects * S.namespaces;
  say(
    `burst: ${S.secretSyncs} SecretSyncs created ${S.createConcurrency} at a time over ${S.objects} objects of one vault in ${S.namespaces} namespaces, an identity each (${triples} distinct (vault, object, identity))`,
  );
  const measured: Record<string, unknown>[] = [];
  for (const run of runs) measured.push(await burst({ k, azure, run, S, start: o.start, say }));
  return {
    what: `${S.secretSyncs} new SecretSyncs created at once (${S.createConcurrency} at a time) over ${S.objects} Key Vault secrets of one vault in ${S.namespaces} namespaces, each namespace its own ServiceAccount and workload identity; Key Vault requests at the vault for the whole first sync and the time from the first create until every SecretSync says CreateSucceeded; fresh manager and provider-azure per run, with provider-azure's --read-share-seconds at its default and at 0`,
    ...S,
    distinctVaultObjectIdentity: triples,
    runs: measured,
  };
}
