// `npm run bench [-- --quick] [-- --out=<file>]`: the manager and provider-azure at scale on the
// real local stack. Six scenarios (see bench/README.md), each printed as a line and written, with
// its parameters, to bench/results/latest.json (quick.json with --quick). Two stacks: one with the
// example file provider (the manager's own costs), a fresh one with provider-azure and the Key
// Vault emulator.
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import {
  MANAGED_LABEL,
  OWNER_ANNOTATION,
  SYNC_GROUP,
  SYNC_PLURAL,
  SYNC_VERSION,
  type SecretSync,
} from '../controller/src/api.js';
import { KubeClients } from '../controller/src/kube-client.js';
import { nextStatus } from '../controller/src/status.js';
import { AzureStack } from '../test/env/azure/client.js';
import { repoRoot } from '../test/env/control-plane.js';
import { managerKubeconfig } from '../test/env/manager-identity.js';
import { PRELOAD, startStack, toEnv, type Stack } from '../test/env/stack.js';
import { parseBenchArgs } from './args.js';
import { changeEventsScenario, EVENT_SIZES } from './change-events.js';
import { BURST_SIZES, firstSyncBurstScenario } from './first-sync-burst.js';
import { secretSync as secretSyncBody } from '../test/helpers/fixtures.js';
import { eventually } from '../test/helpers/kube.js';
import { startManager, type RunningManager } from '../test/helpers/manager.js';
import { startProvider, startTestProvider } from '../test/helpers/provider.js';
import {
  Arrivals,
  metricSum,
  percentile,
  pool,
  processStats,
  readyWith,
  round,
  seedAzureClasses,
  shippedNodeArgs,
  timeout,
  v8HeapMb,
  type OwnStackScenario,
} from './lib.js';

const args = parseBenchArgs(process.argv.slice(2), join(repoRoot, 'bench', 'results'));
const QUICK = args.quick;
const OUT = args.out;
/** --profile: the rotating manager and provider-azure write V8 CPU profiles (open in Chrome DevTools). */
const PROFILE_DIR = join(repoRoot, 'bench', 'results', 'profiles');
const profiled = (): string[] => (args.profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []);
/** The node flags each image's ENTRYPOINT sets: every manager and provider here runs with them. */
const NODE_FLAGS = {
  manager: shippedNodeArgs(join(repoRoot, 'deploy', 'docker', 'Dockerfile.manager')),
  provider: shippedNodeArgs(join(repoRoot, 'deploy', 'docker', 'Dockerfile.provider-azure')),
};
const managerNode = (): string[] => [...NODE_FLAGS.manager, ...profiled()];

/** Sizes of each scenario; --quick keeps the shape and shrinks the counts. */
const SIZE = QUICK
  ? {
      limitOps: 150,
      limitConcurrency: [8, 32],
      initial: [200],
      namespaces: 3,
      azureInitial: 100,
      azureClasses: 10,
      rotation: 300,
      fastLane: 5,
      latencyRuns: 10,
      passes: 2,
      rotationSeconds: 20,
      shareSeconds: 10,
      workers: 16,
    }
  : {
      limitOps: 1000,
      limitConcurrency: [8, 32, 64, 128],
      initial: [1000, 5000],
      namespaces: 5,
      azureInitial: 1000,
      azureClasses: 50,
      rotation: 5000,
      fastLane: 20,
      latencyRuns: 50,
      passes: 3,
      rotationSeconds: 90,
      shareSeconds: 45,
      workers: 16,
    };

// One change-hash key for every manager process of a run, as the chart mounts one from a Secret:
// a restarted manager then finds nothing changed, instead of rewriting every Secret once.
const HASH_KEY = randomBytes(32);
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const started = performance.now();
const results: Record<string, unknown> = {
  at: new Date().toISOString(),
  quick: QUICK,
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: round(totalmem() / 2 ** 30),
    node: process.version,
    shared: 'other builds and tests ran at the same time: compare CPU per sync and RSS, not rates',
  },
  nodeFlags: NODE_FLAGS,
  sizes: SIZE,
  scenarios: {} as Record<string, unknown>,
};
const scenarios = results.scenarios as Record<string, unknown>;

function say(msg: string): void {
  console.log(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
}

function save(): void {
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
}

interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

/** Clients as the manager makes them: client-node with kept-alive connections (kube-client.ts). */
function kube(kubeconfig: string): Kube {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const clients = new KubeClients(kc);
  return { kc, core: clients.make(CoreV1Api), custom: clients.make(CustomObjectsApi) };
}

const secretSync = (
  name: string,
  spc: string,
  labels: Record<string, string>,
  data: { sourcePath: string; targetKey: string }[],
) => secretSyncBody({ name, metadataLabels: labels, sa: 'app', spc, type: 'Opaque', data });

async function namespaceWithSa(k: Kube, name: string): Promise<void> {
  await k.core.createNamespace({ body: { metadata: { name } } });
  await k.core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'app' } } });
}

async function createSpc(
  k: Kube,
  namespace: string,
  name: string,
  provider: string,
  parameters: Record<string, string>,
): Promise<void> {
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace,
    plural: 'secretproviderclasses',
    body: {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: { name },
      spec: { provider, parameters },
    },
  });
}

async function bootStack(): Promise<Stack> {
  const crds = ['secret-sync.x-k8s.io_secretsyncs.yaml', 'secrets-store.csi.x-k8s.io_secretproviderclasses.yaml'].map(
    (f) => join(repoRoot, 'deploy', 'crds', f),
  );
  const stack = await startStack({ manifests: crds, log: () => undefined });
  Object.assign(process.env, toEnv(stack.info), { NODE_EXTRA_CA_CERTS: stack.info.caFile });
  return stack;
}

// ── Scenario 1 ────────────────────────────────────────────────────────────────────────────────
/**
 * The apiserver work one sync cannot avoid — create the Secret, patch the SecretSync's status —
 * done directly with client-node as the manager's ServiceAccount (same RBAC and admission
 * policies), at several concurrencies; the best rate is the ceiling for every sync rate below.
 */
async function limit(admin: Kube, asManager: Kube): Promise<number> {
  const ns = 'bench-limit';
  await namespaceWithSa(admin, ns);
  const runs: { concurrency: number; opsPerSecond: number }[] = [];
  for (const concurrency of SIZE.limitConcurrency) {
    const names = Array.from({ length: SIZE.limitOps }, (_, i) => `c${concurrency}-${i}`);
    const objects: SecretSync[] = [];
    await pool(names, 32, async (name) => {
      objects.push(
        (await admin.custom.createNamespacedCustomObject({
          ...co,
          namespace: ns,
          body: secretSync(name, 'none', {}, [{ sourcePath: 'foo', targetKey: 'key' }]),
        })) as SecretSync,
      );
    });
    const t0 = performance.now();
    await pool(objects, concurrency, async (ss) => {
      await asManager.core.createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: {
            name: ss.metadata.name,
            labels: { [MANAGED_LABEL]: '' },
            annotations: { [OWNER_ANNOTATION]: ss.metadata.uid },
            ownerReferences: [
              {
                apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`,
                kind: 'SecretSync',
                name: ss.metadata.name,
                uid: ss.metadata.uid,
                controller: true,
              },
            ],
          },
          type: 'Opaque',
          data: { key: Buffer.from('value').toString('base64') },
        },
      });
      const status = nextStatus(ss, {
        ok: true,
        reason: 'CreateSucceeded',
        hash: randomBytes(32).toString('base64url'),
        versions: [{ id: 'foo', version: '1' }],
        wrote: true,
      });
      await asManager.custom.patchNamespacedCustomObjectStatus(
        { ...co, namespace: ns, name: ss.metadata.name, body: { status } },
        MERGE_PATCH,
      );
    });
    const seconds = (performance.now() - t0) / 1000;
    runs.push({ concurrency, opsPerSecond: round(SIZE.limitOps / seconds) });
    say(
      `limit: ${SIZE.limitOps} × (Secret create + status patch) at concurrency ${concurrency}: ${round(SIZE.limitOps / seconds)}/s`,
    );
  }
  const best = Math.max(...runs.map((r) => r.opsPerSecond));
  scenarios.limit = {
    what: 'Secret create + SecretSync status patch, as the manager, best concurrency',
    opsPerConcurrency: SIZE.limitOps,
    runs,
    bestPerSecond: best,
  };
  say(`1. limit: ${best} syncs/s (best of concurrency ${SIZE.limitConcurrency.join(', ')})`);
  save();
  return best;
}

// ── Scenario 2 ────────────────────────────────────────────────────────────────────────────────
/** Counts the Secrets the manager made for a batch (proof that status and Secret agree). */
async function countSecrets(admin: Kube, namespaces: string[], batch: string): Promise<number> {
  let n = 0;
  for (const namespace of namespaces) {
    const list = await admin.core.listNamespacedSecret({ namespace, labelSelector: MANAGED_LABEL });
    n += list.items.filter((s) => s.metadata?.name?.startsWith(`${batch}-`)).length;
  }
  return n;
}

// ── Scenario 6 (and 3) ────────────────────────────────────────────────────────────────────────
/** Creates SecretSyncs one by one and times each from the create call to its Secret's arrival. */
async function createToSecret(
  admin: Kube,
  namespace: string,
  spc: string,
  prefix: string,
  runs: number,
  data: { sourcePath: string; targetKey: string }[],
): Promise<number[]> {
  const secrets = new Arrivals(admin.kc, `/api/v1/namespaces/${namespace}/secrets`, () => true, MANAGED_LABEL);
  await secrets.start();
  const times: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const name = `${prefix}-${i}`;
      const t0 = performance.now();
      await admin.custom.createNamespacedCustomObject({ ...co, namespace, body: secretSync(name, spc, {}, data) });
      const at = await timeout(secrets.arrival(`${namespace}/${name}`), 60_000, `Secret ${name}`);
      times.push(at - t0);
    }
  } finally {
    secrets.stop();
  }
  return times;
}

const latencyFigures = (xs: number[]) => ({
  runs: xs.length,
  p50Ms: round(percentile(xs, 50)),
  p99Ms: round(percentile(xs, 99)),
  maxMs: round(Math.max(...xs)),
});

// ── Stack A: the example file provider ────────────────────────────────────────────────────────
async function withTestProvider(): Promise<void> {
  say('stack A: control plane, CRDs, the example file provider, the manager (all namespaces)');
  const stack = await bootStack();
  const dir = mkdtempSync(join(tmpdir(), 'sss-bench-a-'));
  const admin = kube(stack.info.k8s.kubeconfig);
  const provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  let manager: RunningManager | undefined;
  try {
    const asManager = kube(await managerKubeconfig(stack.info, dir));
    const start = () =>
      startManager({
        hashKey: HASH_KEY,
        namespace: '',
        providerDir: provider.socketDir,
        dir,
        args: [`--workers=${SIZE.workers}`, '--log-level=info'],
        nodeArgs: NODE_FLAGS.manager,
      });
    manager = await start();
    await namespaceWithSa(admin, 'bench-latency');
    await createSpc(admin, 'bench-latency', 'spc', 'test', { prefix: '' });
    const latency = latencyFigures(
      await createToSecret(admin, 'bench-latency', 'spc', 'one', SIZE.latencyRuns, [
        { sourcePath: 'foo', targetKey: 'key' },
      ]),
    );
    scenarios.latency = { what: 'one SecretSync create → its Secret, idle system, example provider', ...latency };
    say(`6. latency: create → Secret p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms over ${latency.runs} runs`);
    save();

    const initial: Record<string, unknown>[] = [];
    scenarios.initialSync = {
      what: 'N SecretSyncs → every status CreateSucceeded: created at once while the manager runs, or all present when it starts (cold)',
      workers: SIZE.workers,
      runs: initial,
    };
    const classes = async (batch: string) => {
      const namespaces = Array.from({ length: SIZE.namespaces }, (_, k) => `${batch}-${k}`);
      for (const ns of namespaces) {
        await namespaceWithSa(admin, ns);
        await createSpc(admin, ns, 'spc', 'test', { prefix: '' });
      }
      return namespaces;
    };
    const place = (namespaces: string[]) => (i: number) => ({
      namespace: namespaces[i % namespaces.length]!,
      spc: 'spc',
      data: [{ sourcePath: 'foo', targetKey: 'key' }],
    });
    for (const n of SIZE.initial) {
      const batch = `init${n}`;
      const namespaces = await classes(batch);
      const before = processStats(manager.child.pid!);
      const r = await initialSync(admin, batch, n, place(namespaces));
      const secrets = await countSecrets(admin, namespaces, batch);
      const after = processStats(manager.child.pid!);
      const row = {
        provider: 'example file provider',
        mode: 'created at once',
        n,
        namespaces: namespaces.length,
        ...r,
        secrets,
        managerCpuMsPerSync: round(((after.cpuSeconds - before.cpuSeconds) * 1000) / n, 3),
        managerRssMb: after.rssMb,
        managerPeakRssMb: after.peakRssMb,
      };
      initial.push(row);
      say(
        `2. initial sync, example provider, N=${n} created at once: ${r.seconds} s, ${r.perSecond} syncs/s; ${secrets} Secrets; manager ${row.managerCpuMsPerSync} ms CPU per sync, RSS ${after.rssMb} MB`,
      );
      save();
    }
    // The largest batch again, present before the manager starts: the sync rate without the bench's
    // own creates competing for the apiserver.
    const n = Math.max(...SIZE.initial);
    await manager.stop();
    const coldNamespaces = await classes('cold');
    const cold = await initialSync(admin, 'cold', n, place(coldNamespaces), async () => (manager = await start()));
    const coldSecrets = await countSecrets(admin, coldNamespaces, 'cold');
    // What the manager costs when nothing is due: informers, timers, metrics — no scraping here.
    // Fixed windows, not conditions: the idle cost is CPU over a set time, after a set settling time.
    await new Promise((r) => setTimeout(r, 2_000));
    const idle0 = processStats(manager.child.pid!);
    await new Promise((r) => setTimeout(r, 10_000));
    const idle1 = processStats(manager.child.pid!);
    const watched = SIZE.latencyRuns + SIZE.initial.reduce((a, b) => a + b, 0) + n;
    initial.push({
      provider: 'example file provider',
      mode: 'cold start',
      n,
      ...cold,
      secrets: coldSecrets,
      secretSyncsWatched: watched,
      managerIdleCpuPercent: round(((idle1.cpuSeconds - idle0.cpuSeconds) / 10) * 100, 2),
      managerRssMb: idle1.rssMb,
      managerPeakRssMb: idle1.peakRssMb,
    });
    say(
      `2. initial sync, example provider, N=${n} present at start: ${cold.seconds} s, ${cold.perSecond} syncs/s; idle afterwards: ${round(((idle1.cpuSeconds - idle0.cpuSeconds) / 10) * 100, 2)} % CPU, RSS ${idle1.rssMb} MB with ${watched} SecretSyncs`,
    );
    await manager.stop();
    manager = undefined;

    // Scenario 1 last, with the manager stopped, so that its objects do not weigh on the manager.
    const ceiling = await limit(admin, asManager);
    for (const row of initial) row.ratioToLimit = round((row.perSecond as number) / ceiling, 2);
    for (const row of initial)
      say(`2. ${row.mode}, N=${row.n}: ${Math.round((row.ratioToLimit as number) * 100)} % of the limit`);
    save();
  } finally {
    await manager?.stop();
    await provider.stop();
    await stack.stop();
  }
}

// ── Stack B: provider-azure and the Key Vault emulator ────────────────────────────────────────
async function withProviderAzure(): Promise<void> {
  say('stack B: a fresh control plane, the Azure stand-ins, provider-azure, the manager');
  const stack = await bootStack();
  const dir = mkdtempSync(join(tmpdir(), 'sss-bench-b-'));
  mkdirSync(join(dir, 'providers'));
  const admin = kube(stack.info.k8s.kubeconfig);
  const azure = new AzureStack(stack.info);
  const classes = SIZE.azureClasses;
  const namespaces = Array.from({ length: SIZE.namespaces }, (_, k) => `az-${k}`);
  const vault = 'bench-kv';
  await azure.createVault(vault);
  for (const ns of namespaces) await namespaceWithSa(admin, ns);
  for (const [j, c] of (
    await seedAzureClasses(azure, vault, stack.info.k8s.issuer, namespaces, classes, 'bench')
  ).entries()) {
    await createSpc(admin, c.namespace, `spc-${j}`, 'azure', {
      keyvaultName: vault,
      tenantID: azure.tenantId,
      clientID: c.clientId,
      objects: c.objects,
    });
  }
  const place = (i: number) => ({
    namespace: namespaces[(i % classes) % namespaces.length]!,
    spc: `spc-${i % classes}`,
  });
  const data = (i: number) => [
    { sourcePath: `s${i}-a/0`, targetKey: 'a' },
    { sourcePath: `s${i}-a/1`, targetKey: 'a-previous' },
    { sourcePath: `s${i}-b`, targetKey: 'b' },
  ];
  const provider = await startProvider({
    socketDir: join(dir, 'providers'),
    args: ['--log-level=info'],
    nodeArgs: [...NODE_FLAGS.provider, ...profiled()],
  }).catch(async (e) => {
    await stack.stop();
    throw e;
  });
  let manager: RunningManager | undefined;
  try {
    const ceiling = (scenarios.limit as { bestPerSecond: number }).bestPerSecond;
    manager = await startManager({
      hashKey: HASH_KEY,
      namespace: '',
      providerDir: join(dir, 'providers'),
      dir,
      args: [`--workers=${SIZE.workers}`, '--log-level=info'],
      nodeArgs: NODE_FLAGS.manager,
    });
    const initialRows = (scenarios.initialSync as { runs: Record<string, unknown>[] }).runs;
    // Every SecretSync maps its class's three files, so SecretSyncs of one class ask the same Mount.
    const createBatch = (batch: string, n: number, offset: number) =>
      initialSync(admin, batch, n, (i) => ({ ...place(i + offset), data: data((i + offset) % classes) }));
    const r = await createBatch('azinit', SIZE.azureInitial, 0);
    const row = {
      provider: 'provider-azure + Key Vault emulator',
      n: SIZE.azureInitial,
      classes,
      namespaces: namespaces.length,
      ...r,
      ratioToLimit: round(r.perSecond / ceiling, 2),
    };
    initialRows.push(row);
    say(
      `2. initial sync, provider-azure, N=${SIZE.azureInitial} over ${classes} classes: ${r.seconds} s, ${r.perSecond} syncs/s = ${Math.round(row.ratioToLimit * 100)} % of the limit`,
    );
    save();
    if (SIZE.rotation > SIZE.azureInitial) {
      const grow = await createBatch('azgrow', SIZE.rotation - SIZE.azureInitial, SIZE.azureInitial);
      say(`   grown to ${SIZE.rotation} SecretSyncs in ${grow.seconds} s (${grow.perSecond}/s)`);
      initialRows.push({
        provider: 'provider-azure + Key Vault emulator',
        n: SIZE.rotation - SIZE.azureInitial,
        classes,
        note: `added to reach ${SIZE.rotation}`,
        ...grow,
        ratioToLimit: round(grow.perSecond / ceiling, 2),
      });
    }
    await manager.stop();

    // Rotation passes: a manager restarted with a short interval finds every SecretSync due (one
    // interval is waited out first, so that the last-synced one is due too).
    await new Promise((r) => setTimeout(r, SIZE.rotationSeconds * 1000 + 1000)); // the interval is the condition
    say(
      `rotation: manager restarted with --rotation-poll-interval-seconds=${SIZE.rotationSeconds} --rotation-share-seconds=${SIZE.shareSeconds}`,
    );
    const statsBefore = await vaultRequests(azure);
    const providerBefore = await provider.metrics();
    manager = await startManager({
      hashKey: HASH_KEY,
      namespace: '',
      providerDir: join(dir, 'providers'),
      dir,
      args: [
        `--workers=${SIZE.workers}`,
        '--log-level=info',
        `--rotation-poll-interval-seconds=${SIZE.rotationSeconds}`,
        `--rotation-share-seconds=${SIZE.shareSeconds}`,
      ],
      nodeArgs: managerNode(),
    });
    const m = manager;
    let prevCpu = processStats(m.child.pid!).cpuSeconds;
    let prevRotations = 0;
    let prevAt = performance.now();
    const rotations = async () => {
      const t = await m.metrics();
      return (
        metricSum(t, 'secretsync_reconciles_total', { reason: 'UpdateNoValueChangeSucceeded' }) +
        metricSum(t, 'secretsync_reconciles_total', { reason: 'UpdateValueChangeOrForceUpdateSucceeded' })
      );
    };
    // Scenario 3, while pass 1 is in flight.
    await eventually(
      async () => ((await rotations()) >= Math.min(100, SIZE.rotation / 10) ? true : undefined),
      5 * 60_000,
      'the first rotations',
    );
    const slowDepth = metricSum(await m.metrics(), 'secretsync_queue_depth', { lane: 'slow' });
    const fastNs = namespaces[0]!;
    const fast = await createToSecret(admin, fastNs, 'spc-0', 'fast', SIZE.fastLane, data(0));
    const rotatedMeanwhile = await rotations();
    scenarios.fastLane = {
      what: `create → Secret while a rotation of ${SIZE.rotation} SecretSyncs is in flight (provider-azure)`,
      slowLaneDepthAtStart: slowDepth,
      rotationsDoneAtEnd: rotatedMeanwhile,
      ...latencyFigures(fast),
    };
    say(
      `3. fast lane: create → Secret p50 ${round(percentile(fast, 50))} ms, p99 ${round(percentile(fast, 99))} ms with ${slowDepth} rotations queued`,
    );
    save();

    // Scenarios 4 and 5: pass boundaries by the count of finished rotations.
    const total = SIZE.rotation + SIZE.fastLane;
    const passes: Record<string, unknown>[] = [];
    let prevVault = statsBefore;
    let prevProvider = providerBefore;
    for (let k = 1; k <= SIZE.passes; k++) {
      const target = SIZE.rotation + (k - 1) * total;
      await eventually(
        async () => ((await rotations()) >= target ? true : undefined),
        20 * 60_000,
        `rotation pass ${k}`,
        1000,
      );
      const now = await vaultRequests(azure);
      const pm = await provider.metrics();
      const mm = await m.metrics();
      const ms = processStats(m.child.pid!);
      const ps = processStats(provider.child.pid!);
      const done = await rotations();
      const kv = diff(now, prevVault);
      const providerSent =
        metricSum(pm, 'keyvault_requests_total') - metricSum(prevProvider, 'keyvault_requests_total');
      const pass = {
        pass: k,
        rotations: done - prevRotations,
        seconds: round((performance.now() - prevAt) / 1000),
        keyVaultRequestsAtVault: kv.total,
        keyVaultRequestsByOperation: kv.byOp,
        keyVaultRequestsByProvider: providerSent,
        providerMounts:
          metricSum(pm, 'mount_duration_seconds_count') - metricSum(prevProvider, 'mount_duration_seconds_count'),
        sharedMounts: metricSum(mm, 'secretsync_shared_mounts_total'),
        managerCpuMsPerRotation: round(((ms.cpuSeconds - prevCpu) * 1000) / Math.max(1, done - prevRotations), 3),
        managerRssMb: ms.rssMb,
        providerRssMb: ps.rssMb,
        // The provider's V8 split, to tell heap headroom from native memory (bench/README.md: Memory).
        providerHeapMb: v8HeapMb(pm),
      };
      passes.push(pass);
      say(
        `4/5. pass ${k}: ${pass.rotations} rotations in ${pass.seconds} s; Key Vault requests ${kv.total} at the vault, ${providerSent} by the provider; manager ${pass.managerCpuMsPerRotation} ms CPU per rotation, RSS ${ms.rssMb} MB; provider RSS ${ps.rssMb} MB (heap ${pass.providerHeapMb.used} of ${pass.providerHeapMb.total} MB)`,
      );
      [prevVault, prevProvider, prevCpu, prevRotations, prevAt] = [now, pm, ms.cpuSeconds, done, performance.now()];
    }
    const distinctObjects = classes * 2;
    const distinctReads = classes * 3;
    scenarios.keyVaultCallsPerPass = {
      what: `${SIZE.rotation} SecretSyncs over ${classes} classes of 2 objects (one with objectVersionHistory: 2) → Key Vault requests per rotation pass`,
      secretSyncs: SIZE.rotation,
      distinctObjects,
      distinctObjectVersions: distinctReads,
      secretSyncsTimesObjects: SIZE.rotation * 2,
      rotationIntervalSeconds: SIZE.rotationSeconds,
      shareWindowSeconds: SIZE.shareSeconds,
      passes: passes.map((p) => ({
        pass: p.pass,
        atVault: p.keyVaultRequestsAtVault,
        byProvider: p.keyVaultRequestsByProvider,
        byOperation: p.keyVaultRequestsByOperation,
        providerMounts: p.providerMounts,
      })),
    };
    const ms = processStats(m.child.pid!);
    const ps = processStats(provider.child.pid!);
    const steady = passes.slice(1);

    // Scenario 5's CPU per no-change reconcile: one more restart finds every SecretSync due again
    // (and past pass 1's transition Events); measured while rotations are still queued, so that the
    // manager is busy with them only and idle costs do not count.
    const stopAt = performance.now();
    await manager.stop();
    say(`   manager stopped in ${round((performance.now() - stopAt) / 1000)} s; restarting after one interval`);
    await new Promise((r) => setTimeout(r, SIZE.rotationSeconds * 1000 + 1000)); // the interval is the condition
    const args4 = [
      `--workers=${SIZE.workers}`,
      '--log-level=info',
      `--rotation-poll-interval-seconds=${SIZE.rotationSeconds}`,
      `--rotation-share-seconds=${SIZE.shareSeconds}`,
    ];
    manager = await startManager({
      hashKey: HASH_KEY,
      namespace: '',
      providerDir: join(dir, 'providers'),
      dir,
      args: args4,
      nodeArgs: NODE_FLAGS.manager,
    });
    const m4 = manager;
    const noChange = async () =>
      metricSum(await m4.metrics(), 'secretsync_reconciles_total', { reason: 'UpdateNoValueChangeSucceeded' });
    await eventually(
      async () => ((await noChange()) >= total * 0.1 ? true : undefined),
      5 * 60_000,
      'the saturated pass to start',
      500,
    );
    const satStart = { cpu: processStats(m4.child.pid!).cpuSeconds, rotations: await noChange() };
    await eventually(
      async () => ((await noChange()) >= total * 0.8 ? true : undefined),
      20 * 60_000,
      'the saturated pass',
      1000,
    );
    const satEnd = {
      cpu: processStats(m4.child.pid!).cpuSeconds,
      rotations: await noChange(),
      slowDepth: metricSum(await m4.metrics(), 'secretsync_queue_depth', { lane: 'slow' }),
    };
    const events = metricSum(await m4.metrics(), 'secretsync_reconciles_total', {
      reason: 'UpdateValueChangeOrForceUpdateSucceeded',
    });
    const saturated = {
      rotations: satEnd.rotations - satStart.rotations,
      cpuMsPerRotation: round(
        ((satEnd.cpu - satStart.cpu) * 1000) / Math.max(1, satEnd.rotations - satStart.rotations),
        3,
      ),
      slowLaneDepthAtEnd: satEnd.slowDepth,
      valueChanges: events,
    };
    say(
      `5. no-change reconcile while saturated: ${saturated.cpuMsPerRotation} ms manager CPU each over ${saturated.rotations} rotations (${satEnd.slowDepth} still queued)`,
    );
    scenarios.steadyCost = {
      what: 'manager CPU per no-change reconcile (a pass after a restart, while saturated), per whole pass (idle time included), peak and per-pass RSS',
      managerCpuMsPerNoChangeReconcile: saturated.cpuMsPerRotation,
      saturated,
      managerCpuMsPerRotationOverLaterPasses: steady.length
        ? round(steady.reduce((a, p) => a + (p.managerCpuMsPerRotation as number), 0) / steady.length, 3)
        : null,
      managerPeakRssMb: ms.peakRssMb,
      providerPeakRssMb: ps.peakRssMb,
      rssAfterEachPass: passes.map((p) => ({ pass: p.pass, managerMb: p.managerRssMb, providerMb: p.providerRssMb })),
      passes,
    };
    say(
      `5. steady cost: ${(scenarios.steadyCost as { managerCpuMsPerNoChangeReconcile: number }).managerCpuMsPerNoChangeReconcile} ms CPU per no-change reconcile; peak RSS manager ${ms.peakRssMb} MB, provider ${ps.peakRssMb} MB`,
    );
    save();
  } finally {
    await manager?.stop();
    await provider.stop();
    await stack.stop();
  }
}

// ── Scale (--scale, its own run) ──────────────────────────────────────────────────────────────
/** --scale: one manager growing to 50 000 SecretSyncs over 500 classes (example provider). */
const SCALE = {
  checkpoints: [5000, 25000, 50000],
  namespaces: 50,
  classesPerNamespace: 10,
  workers: 16,
  createConcurrency: 32,
  settleSeconds: 15,
  idleSeconds: 10,
  passIntervalSeconds: 60,
  passShareSeconds: 30,
};

/** Memory and CPU of the manager now: RSS and peak from /proc, V8's split from its metrics. */
async function managerMemory(m: RunningManager) {
  const t = await m.metrics();
  const s = processStats(m.child.pid!);
  const h = v8HeapMb(t);
  return {
    rssMb: s.rssMb,
    peakRssMb: s.peakRssMb,
    heapTotalMb: h.total,
    heapUsedMb: h.used,
    externalMb: h.external,
    cpuSeconds: s.cpuSeconds,
  };
}

/** `--events` and `--burst`: one scenario on a stack of its own, its figures under `key`. */
async function onOwnStack<S>(
  key: string,
  sizes: { quick: S; full: S },
  scenario: (o: OwnStackScenario<S>) => Promise<Record<string, unknown>>,
): Promise<void> {
  const stack = await bootStack();
  try {
    scenarios[key] = {
      at: new Date().toISOString(),
      ...(await scenario({
        stack,
        sizes: QUICK ? sizes.quick : sizes.full,
        say,
        start: { managerNode: managerNode(), providerNode: NODE_FLAGS.provider, hashKey: HASH_KEY },
      })),
    };
  } finally {
    await stack.stop();
  }
}

async function scale(): Promise<void> {
  say(
    `scale: control plane, CRDs, the example file provider; one manager growing to ${Math.max(...SCALE.checkpoints)} SecretSyncs`,
  );
  const stack = await bootStack();
  const dir = mkdtempSync(join(tmpdir(), 'sss-bench-scale-'));
  const admin = kube(stack.info.k8s.kubeconfig);
  const provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  let manager: RunningManager | undefined;
  const rows: Record<string, unknown>[] = [];
  const classes = SCALE.namespaces * SCALE.classesPerNamespace;
  const result: Record<string, unknown> = {
    what: `one manager, SecretSyncs created at once (${SCALE.createConcurrency} at a time) in steps while it runs, over ${classes} classes in ${SCALE.namespaces} namespaces (example provider); at each step: sync time, CPU per sync, idle CPU and memory once settled; at the end one rotation pass of all of them`,
    ...SCALE,
    at: new Date().toISOString(),
    nodeFlags: NODE_FLAGS.manager,
    steps: rows,
  };
  scenarios.scale = result;
  try {
    const namespaces = Array.from({ length: SCALE.namespaces }, (_, k) => `scale-${k}`);
    await pool(namespaces, 8, async (ns) => {
      await namespaceWithSa(admin, ns);
      for (let c = 0; c < SCALE.classesPerNamespace; c++)
        await createSpc(admin, ns, `spc-${c}`, 'test', { prefix: '' });
    });
    const args = [`--workers=${SCALE.workers}`, '--log-level=info'];
    manager = await startManager({
      hashKey: HASH_KEY,
      namespace: '',
      providerDir: provider.socketDir,
      dir,
      args,
      nodeArgs: NODE_FLAGS.manager,
    });
    const arrivals = new Arrivals(
      admin.kc,
      `/apis/${SYNC_GROUP}/${SYNC_VERSION}/${SYNC_PLURAL}`,
      readyWith(['CreateSucceeded']),
      'bench-batch=scale',
    );
    await arrivals.start();
    const t0 = performance.now();
    let created = 0;
    const progress = setInterval(() => say(`   scale: ${created} created, ${arrivals.at.size} synced`), 30_000);
    try {
      for (const target of SCALE.checkpoints) {
        const m = manager;
        const before = processStats(m.child.pid!);
        const stepStart = performance.now();
        const from = created;
        await pool(
          Array.from({ length: target - from }, (_, i) => from + i),
          SCALE.createConcurrency,
          async (i) => {
            // Class i % 500: SecretSyncs of one class share their Mount within the share window.
            const ns = namespaces[i % SCALE.namespaces]!;
            const spc = `spc-${Math.floor(i / SCALE.namespaces) % SCALE.classesPerNamespace}`;
            await admin.custom.createNamespacedCustomObject({
              ...co,
              namespace: ns,
              body: secretSync(`s-${i}`, spc, { 'bench-batch': 'scale' }, [{ sourcePath: 'foo', targetKey: 'key' }]),
            });
            created++;
          },
        );
        await timeout(arrivals.count(target), 60 * 60_000, `${target} SecretSyncs to sync`);
        const synced = performance.now();
        const after = processStats(m.child.pid!);
        // Fixed windows, not conditions: the idle cost is CPU over a set time, after a set settling time.
        await new Promise((r) => setTimeout(r, SCALE.settleSeconds * 1000));
        const idle0 = processStats(m.child.pid!);
        await new Promise((r) => setTimeout(r, SCALE.idleSeconds * 1000));
        const mem = await managerMemory(m);
        const row = {
          secretSyncs: target,
          stepSyncs: target - from,
          stepSeconds: round((synced - stepStart) / 1000),
          stepSyncsPerSecond: round((target - from) / ((synced - stepStart) / 1000)),
          secondsSinceFirstCreate: round((synced - t0) / 1000),
          cpuMsPerSync: round(((after.cpuSeconds - before.cpuSeconds) * 1000) / (target - from), 3),
          idleCpuPercent: round(((mem.cpuSeconds - idle0.cpuSeconds) / SCALE.idleSeconds) * 100, 2),
          rssMb: mem.rssMb,
          peakRssMb: mem.peakRssMb,
          heapTotalMb: mem.heapTotalMb,
          heapUsedMb: mem.heapUsedMb,
          externalMb: mem.externalMb,
        };
        rows.push(row);
        say(
          `scale: ${target} SecretSyncs synced (${row.stepSyncs} in ${row.stepSeconds} s, ${row.stepSyncsPerSecond}/s; ${row.secondsSinceFirstCreate} s since the first create); ${row.cpuMsPerSync} ms CPU per sync; idle ${row.idleCpuPercent} % CPU; RSS ${row.rssMb} MB (peak ${row.peakRssMb}), heap ${row.heapUsedMb}/${row.heapTotalMb} MB`,
        );
        save();
      }
    } finally {
      clearInterval(progress);
      arrivals.stop();
    }

    // One rotation pass of everything: a manager restarted after one interval finds all of them due
    // (its start lists them all: the cold start at full size).
    const total = Math.max(...SCALE.checkpoints);
    await manager.stop();
    await new Promise((r) => setTimeout(r, SCALE.passIntervalSeconds * 1000 + 1000)); // the interval is the condition
    const startAt = performance.now();
    manager = await startManager({
      hashKey: HASH_KEY,
      namespace: '',
      providerDir: provider.socketDir,
      dir,
      args: [
        ...args,
        `--rotation-poll-interval-seconds=${SCALE.passIntervalSeconds}`,
        `--rotation-share-seconds=${SCALE.passShareSeconds}`,
      ],
      nodeArgs: NODE_FLAGS.manager,
    });
    const readySeconds = round((performance.now() - startAt) / 1000);
    const m = manager;
    const noChange = async () =>
      metricSum(await m.metrics(), 'secretsync_reconciles_total', { reason: 'UpdateNoValueChangeSucceeded' });
    const p0 = processStats(m.child.pid!);
    const passStart = performance.now();
    await eventually(
      async () => ((await noChange()) >= total ? true : undefined),
      60 * 60_000,
      'the rotation pass',
      1000,
    );
    const passSeconds = (performance.now() - passStart) / 1000;
    const p1 = processStats(m.child.pid!);
    const rotations = await noChange();
    const mem = await managerMemory(m);
    result.pass = {
      secretSyncs: total,
      coldStartReadySeconds: readySeconds,
      rotations,
      seconds: round(passSeconds),
      rotationsPerSecond: round(rotations / passSeconds),
      cpuMsPerRotation: round(((p1.cpuSeconds - p0.cpuSeconds) * 1000) / rotations, 3),
      cpuSecondsPerPass: round(p1.cpuSeconds - p0.cpuSeconds),
      rssMb: mem.rssMb,
      peakRssMb: mem.peakRssMb,
      heapTotalMb: mem.heapTotalMb,
      heapUsedMb: mem.heapUsedMb,
    };
    say(
      `scale: cold start with ${total} ready in ${readySeconds} s; one rotation pass: ${rotations} rotations in ${round(passSeconds)} s, ${(result.pass as { cpuMsPerRotation: number }).cpuMsPerRotation} ms CPU each; RSS ${mem.rssMb} MB (peak ${mem.peakRssMb})`,
    );
    // Per 1 000 SecretSyncs between the first and the last step: what sizing needs.
    const first = rows[0] as { secretSyncs: number; rssMb: number; heapUsedMb: number };
    const last = rows[rows.length - 1] as typeof first;
    const per1000 = (a: number, b: number) => round(((b - a) * 1000) / (last.secretSyncs - first.secretSyncs), 2);
    result.per1000 = {
      from: first.secretSyncs,
      to: last.secretSyncs,
      rssMb: per1000(first.rssMb, last.rssMb),
      heapUsedMb: per1000(first.heapUsedMb, last.heapUsedMb),
      cpuSecondsPerPass: round(((result.pass as { cpuMsPerRotation: number }).cpuMsPerRotation * 1000) / 1000, 2),
    };
    say(
      `scale: per 1 000 SecretSyncs from ${first.secretSyncs} to ${last.secretSyncs}: ${JSON.stringify(result.per1000)}`,
    );
    save();
  } finally {
    await manager?.stop();
    await provider.stop();
    await stack.stop();
  }
}

/**
 * Scenario 2's clock: creates `n` SecretSyncs (class and mapping chosen by index) as fast as the
 * bench can, and times until every one says CreateSucceeded. With `cold`, they are all created
 * first and the clock starts when `cold` starts the manager (a manager meeting a full cluster).
 */
async function initialSync(
  admin: Kube,
  batch: string,
  n: number,
  of: (i: number) => { namespace: string; spc: string; data: { sourcePath: string; targetKey: string }[] },
  cold?: () => Promise<unknown>,
) {
  const arrivals = new Arrivals(
    admin.kc,
    `/apis/${SYNC_GROUP}/${SYNC_VERSION}/${SYNC_PLURAL}`,
    readyWith(['CreateSucceeded']),
    `bench-batch=${batch}`,
  );
  await arrivals.start();
  let t0 = performance.now();
  let created = 0;
  const progress = setInterval(() => say(`   ${batch}: ${created} created, ${arrivals.at.size} synced`), 10_000);
  try {
    await pool(
      Array.from({ length: n }, (_, i) => i),
      32,
      async (i) => {
        const { namespace, spc, data } = of(i);
        await admin.custom.createNamespacedCustomObject({
          ...co,
          namespace,
          body: secretSync(`${batch}-${i}`, spc, { 'bench-batch': batch }, data),
        });
        created++;
      },
    );
    const createSeconds = (performance.now() - t0) / 1000;
    if (cold) {
      t0 = performance.now();
      await cold();
    }
    await timeout(arrivals.count(n), 30 * 60_000, `${n} SecretSyncs to sync`);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds: round(seconds), perSecond: round(n / seconds), createSeconds: round(createSeconds) };
  } finally {
    clearInterval(progress);
    arrivals.stop();
  }
}

async function vaultRequests(azure: AzureStack): Promise<Record<string, number>> {
  return (await azure.stats()).vaultRequests;
}

function diff(
  now: Record<string, number>,
  before: Record<string, number>,
): { total: number; byOp: Record<string, number> } {
  const byOp: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of Object.entries(now)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) {
      byOp[k] = d;
      total += d;
    }
  }
  return { total, byOp };
}

async function main(): Promise<void> {
  if (!process.env.NODE_OPTIONS?.includes('preload.mjs')) throw new Error(`run with NODE_OPTIONS=--import ${PRELOAD}`);
  say(
    `${args.scale ? 'scale' : args.events ? 'events' : args.burst ? 'burst' : QUICK ? 'quick' : 'full'} run on ${cpus().length} cores, ${round(totalmem() / 2 ** 30)} GiB; results → ${OUT}`,
  );
  // The scale scenario is its own run (about 20 minutes); each kind of run keeps the other's latest
  // figures in the file, each with the time it ran.
  const previous = existsSync(OUT)
    ? (JSON.parse(readFileSync(OUT, 'utf8')) as {
        at?: string;
        otherScenariosAt?: string;
        scenarios?: Record<string, unknown>;
      })
    : {};
  const own = args.scale ? 'scale' : args.events ? 'changeEvents' : args.burst ? 'firstSyncBurst' : undefined;
  if (own) {
    for (const [k, v] of Object.entries(previous.scenarios ?? {})) if (k !== own) scenarios[k] = v;
    // After another single-scenario run, the rest are still from the full run before it.
    results.otherScenariosAt = previous.otherScenariosAt ?? previous.at;
    if (args.scale) await scale();
    else if (args.burst) await onOwnStack('firstSyncBurst', BURST_SIZES, firstSyncBurstScenario);
    else await onOwnStack('changeEvents', EVENT_SIZES, changeEventsScenario);
  } else {
    if (!QUICK && previous.scenarios?.scale) scenarios.scale = previous.scenarios.scale;
    for (const kept of ['changeEvents', 'firstSyncBurst'])
      if (!QUICK && previous.scenarios?.[kept]) scenarios[kept] = previous.scenarios[kept];
    await withTestProvider();
    await withProviderAzure();
  }
  results.durationSeconds = round((performance.now() - started) / 1000);
  save();
  say(`done in ${results.durationSeconds} s → ${OUT}`);
}

await main();
