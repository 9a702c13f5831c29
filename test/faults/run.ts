// The fault matrix: a few hundred SecretSyncs syncing and rotating through provider-azure on a
// local stack of their own, while each fault below is injected in turn under load. After each one
// the run measures how long every Secret takes to hold the vault's current values again and how
// many reconciles failed meanwhile, and it checks throughout that no managed Secret is deleted or
// emptied, that Secrets the manager does not own are never touched, that no key ever goes back to an
// older version, and (after a manager crash, and in the change-event faults) that no Secret is
// rewritten twice for one value. Key Vault's events reach the provider through the stack's queue
// (README "Change events"), so each change-event fault also checks that events come back after it.
//
//   npm run faults                  8 s faults, 200 SecretSyncs (npm test runs this)
//   npm run faults -- --long        60 s faults, 500 SecretSyncs
//   npm run faults -- --out=f.json  where the figures go (default bench/results/faults.json)
//   FAULTS_ONLY='kube-apiserver restarted' npm run faults   only the rows whose names contain it
//                                   (test/env/compat.sh runs that row on kine)
import { CoordinationV1Api, Watch, type V1Secret } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricSum, pool, round } from '../../bench/lib.js';
import { AzureStack } from '../env/azure/client.js';
import { datastoreFromEnv, repoRoot, yamlFilesIn } from '../env/control-plane.js';
import { PRELOAD, startStack, toEnv, type Stack } from '../env/stack.js';
import { changeQueueFlags, writeProviderToken } from '../helpers/change-queue.js';
import { azureParameters, secretProviderClass, secretSync } from '../helpers/fixtures.js';
import { eventually, kube, type Kube } from '../helpers/kube.js';
import { startManager, type RunningManager } from '../helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../helpers/provider.js';
import { startRelay } from '../helpers/tcp-proxy.js';
import { managerKubeconfig } from '../env/manager-identity.js';

const args = process.argv.slice(2);
const LONG = args.includes('--long');
const OUT =
  args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? join(repoRoot, 'bench', 'results', 'faults.json');
const FAULT_MS = (LONG ? 60 : 8) * 1000;
const CLASSES = 10;
const PER_CLASS = LONG ? 50 : 20;
const FOREIGN = 5;
const NS = 'faults';
const SA = 'workload';
const ROTATION_S = 5;
const HASH_KEY = randomBytes(32);
const MANAGED_LABEL = 'secrets-store.sync.x-k8s.io';

interface FaultResult {
  fault: string;
  faultSeconds: number;
  convergeSeconds: number;
  failedReconciles: number;
  /** Per Ready reason, the most SecretSyncs seen with it at once while the fault lasted (sampled every few seconds). */
  statusDuringFault: Record<string, number>;
}

interface Ctx {
  stack: Stack;
  k: Kube;
  azure: AzureStack;
  vault: string;
  dir: string;
  providerDir: string;
  provider: RunningProviderProcess;
  manager: RunningManager;
  version: number;
  /** How many times bumpValues ran: a key may change at most once per run. */
  bumps: number;
  /** The vault's Event Grid subscription into the queue the provider reads. */
  events: { queue: string; subscription: string; providerArgs: string[] };
  /** Violations a fault found by itself (one writer at a time, no Event storm). */
  violations: string[];
}

const log = (m: string) => console.log(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits, polling often, for what a fault starts on (a Mount answered, a value written). */
const until = (what: string, check: () => Promise<boolean>) =>
  eventually(async () => ((await check()) ? true : undefined), 30_000, what, 50);
const secretName = (i: number) => `s${i}`;
const value = (obj: string, version: number) => `${obj}-v${version}`;
const syncName = (c: number, j: number) => `sync-${c}-${j}`;
/** The version a Secret's (Base64) value names: `value()` writes `<object>-v<version>`. */
const versionOf = (b64: string | undefined) => {
  const m = b64 === undefined ? null : /-v(\d+)$/.exec(Buffer.from(b64, 'base64').toString());
  return m ? Number(m[1]) : undefined;
};

/** Watches every Secret of the namespace: a managed Secret deleted or emptied, or a foreign one changed, is a violation. */
class SecretWatch {
  readonly violations: string[] = [];
  /**
   * Changes per Secret and per `<Secret>/<key>`, for "no value written twice". A new value in the
   * vault is several objects written one by one, so a Secret may rightly change twice for it
   * (a Mount between the writes); each of its keys changes once.
   */
  readonly dataChanges = new Map<string, number>();
  readonly keyChanges = new Map<string, number>();
  private readonly lastData = new Map<string, Record<string, string>>();
  private req?: { abort(): void };
  private stopped = false;

  constructor(
    private readonly k: Kube,
    private readonly foreign: Map<string, string>,
  ) {}

  async start(): Promise<void> {
    if (this.stopped) return;
    const w = new Watch(this.k.kc);
    this.req = await w.watch(
      `/api/v1/namespaces/${NS}/secrets`,
      {},
      (type, s: V1Secret) => this.on(type, s),
      () => {
        // Ends on apiserver restarts: start again (a gap of seconds; the end state is checked anyway).
        if (!this.stopped)
          setTimeout(() => void this.start().catch(() => setTimeout(() => void this.start(), 1_000)), 500);
      },
    );
  }

  private on(type: string, s: V1Secret): void {
    const name = s.metadata?.name ?? '';
    if (this.foreign.has(name)) {
      if (type !== 'ADDED' || s.metadata?.resourceVersion !== this.foreign.get(name))
        this.violations.push(`foreign Secret ${name}: ${type}`);
      return;
    }
    if (s.metadata?.labels?.[MANAGED_LABEL] === undefined) return;
    if (type === 'DELETED') this.violations.push(`managed Secret ${name} was deleted`);
    const keys = Object.keys(s.data ?? {});
    if (type !== 'DELETED' && keys.length < 2)
      this.violations.push(`managed Secret ${name} held ${keys.length} keys (${type})`);
    const data = s.data ?? {};
    const last = this.lastData.get(name);
    for (const key of keys) {
      const was = versionOf(last?.[key]);
      if (was !== undefined && (versionOf(data[key]) ?? was) < was)
        this.violations.push(`${name}/${key} went back from version ${was} to ${versionOf(data[key])}`);
    }
    if (last) {
      const changed = [...new Set([...Object.keys(last), ...keys])].filter((key) => last[key] !== data[key]);
      if (changed.length) this.dataChanges.set(name, (this.dataChanges.get(name) ?? 0) + 1);
      for (const key of changed)
        this.keyChanges.set(`${name}/${key}`, (this.keyChanges.get(`${name}/${key}`) ?? 0) + 1);
    }
    this.lastData.set(name, data);
  }

  stop(): void {
    this.stopped = true;
    this.req?.abort();
  }
}

async function failedReconciles(m: RunningManager): Promise<number> {
  const text = await m.metrics().catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('secretsync_reconciles_total{') && /reason="[^"]*(Failed|Error)[^"]*"/.test(l))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

async function readyReasons(k: Kube): Promise<Record<string, number>> {
  const list = (await k.custom.listNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'secretsyncs',
  })) as { items: { metadata: { name: string }; status?: { conditions?: { type: string; reason: string }[] } }[] };
  const out: Record<string, number> = {};
  for (const ss of list.items) {
    if (ss.metadata.name.startsWith('foreign-')) continue;
    const r = ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason ?? 'none';
    out[r] = (out[r] ?? 0) + 1;
  }
  return out;
}

/** Whether a managed Secret holds the current version of both its objects. */
function holdsNewValues(ctx: Ctx, s: V1Secret): boolean {
  const c = Number(/^sync-(\d+)-/.exec(s.metadata?.name ?? '')?.[1]);
  const d = s.data ?? {};
  return (
    Buffer.from(d.own ?? '', 'base64').toString() === value(secretName(c), ctx.version) &&
    Buffer.from(d.shared ?? '', 'base64').toString() === value('shared', ctx.version)
  );
}

const managedSecrets = async (ctx: Ctx) =>
  (await ctx.k.core.listNamespacedSecret({ namespace: NS, labelSelector: MANAGED_LABEL })).items;

/** How many managed Secrets hold the current version of both their objects. */
async function newValuesWritten(ctx: Ctx): Promise<number> {
  return (await managedSecrets(ctx)).filter((s) => holdsNewValues(ctx, s)).length;
}

/** Every managed Secret holds the current version of both its objects. */
async function converged(ctx: Ctx): Promise<boolean> {
  const secrets = await managedSecrets(ctx);
  return secrets.length >= CLASSES * PER_CLASS && secrets.every((s) => holdsNewValues(ctx, s));
}

/** Mount calls the provider has answered, whatever their outcome. */
async function mountsAnswered(p: RunningProviderProcess): Promise<number> {
  const text = await p.metrics().catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.startsWith('mount_duration_seconds_count'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/**
 * Waits until the last fault's Events are written: every SecretSync has reported a no-change check
 * after its new value (the Event that follows a change), and no Event has been added for a second.
 */
async function eventsSettled(ctx: Ctx): Promise<void> {
  const n = CLASSES * PER_CLASS;
  await eventually(
    async () => ((await readyReasons(ctx.k)).UpdateNoValueChangeSucceeded === n ? true : undefined),
    60_000,
    'every SecretSync to report a no-change check',
    250,
  );
  let last = -1;
  await eventually(
    async () => {
      const now = (await ctx.k.core.listNamespacedEvent({ namespace: NS })).items.length;
      const still = now === last;
      last = now;
      return still ? true : undefined;
    },
    30_000,
    'the Events to settle',
    1_000,
  );
}

/**
 * After a restart in a burst, each change of a Secret is announced once — a change Event per real
 * change (`changes`: per Secret, from the watch), then one no-change Event. A change Event with no
 * change behind it means the restart re-announced what the old manager had written; more Normal
 * Events than that in all is a storm. (Warnings are failed reconciles, which the matrix counts.)
 */
async function eventStorm(ctx: Ctx, before: Set<string>, changes: Map<string, number>): Promise<string[]> {
  const events = (await ctx.k.core.listNamespacedEvent({ namespace: NS })).items.filter(
    (e) => !before.has(e.metadata!.name!),
  );
  const announced = new Map<string, number>();
  const byReason: Record<string, number> = {};
  for (const e of events) {
    byReason[e.reason ?? ''] = (byReason[e.reason ?? ''] ?? 0) + 1;
    if (e.reason === 'UpdateValueChangeOrForceUpdateSucceeded')
      announced.set(e.involvedObject.name!, (announced.get(e.involvedObject.name!) ?? 0) + 1);
  }
  const out: string[] = [];
  const over = [...announced]
    .filter(([name, n]) => n > (changes.get(name) ?? 0))
    .map(([name, n]) => `${name}: ${n} for ${changes.get(name) ?? 0}`);
  if (over.length)
    out.push(
      `${over.length} SecretSyncs announced more changes than their Secrets saw across the manager restart (${over.slice(0, 3).join(', ')})`,
    );
  const real = [...changes.values()].reduce((a, b) => a + b, 0);
  const normal = events.filter((e) => e.type === 'Normal').length;
  if (normal > real + CLASSES * PER_CLASS)
    out.push(
      `${normal} Normal Events for ${real} Secret changes of ${CLASSES * PER_CLASS} SecretSyncs across the manager restart: ${JSON.stringify(byReason)}`,
    );
  return out;
}

async function bumpValues(ctx: Ctx): Promise<void> {
  ctx.version++;
  ctx.bumps++;
  await pool([...Array.from({ length: CLASSES }, (_, i) => secretName(i)), 'shared'], 4, async (n) => {
    await ctx.azure.setSecret(ctx.vault, n, value(n, ctx.version));
  });
}

const managerArgs = [
  '--rotation-poll-interval-seconds=' + ROTATION_S,
  '--rotation-share-seconds=0',
  '--workers=8',
  '--log-level=info',
  '--provider-timeout-seconds=5',
];
async function startTheManager(
  ctx: Pick<Ctx, 'providerDir' | 'dir'>,
  extra: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<RunningManager> {
  return startManager({
    namespace: NS,
    providerDir: ctx.providerDir,
    dir: ctx.dir,
    hashKey: HASH_KEY,
    args: managerArgs,
    ...extra,
  });
}
// Its reads give up before the manager's 5 s deadline does, as the defaults (20 s, 30 s) do.
const startTheProvider = (ctx: Pick<Ctx, 'providerDir' | 'events'>) =>
  startProvider({
    socketDir: ctx.providerDir,
    args: ['--log-level=info', '--vault-request-timeout-seconds=4', ...ctx.events.providerArgs],
  });

/** A manager in a pair sharing the chart's Lease; `relayed` puts its apiserver connection through a relay. */
async function electedManager(ctx: Ctx, pod: string, relay?: { address: string }): Promise<RunningManager> {
  const dir = join(ctx.dir, pod);
  mkdirSync(dir, { recursive: true });
  const kubeconfig = relay
    ? await managerKubeconfig(ctx.stack.info, dir, undefined, `https://${relay.address}`)
    : undefined;
  return startManager({
    namespace: NS,
    providerDir: ctx.providerDir,
    dir,
    hashKey: HASH_KEY,
    env: { POD_NAME: pod },
    ...(kubeconfig ? { kubeconfig } : {}),
    args: [
      ...managerArgs,
      '--leader-elect=true',
      '--leader-election-namespace=azure-secret-store',
      `--lease-duration-seconds=${LEASE_S}`,
    ],
  });
}
const LEASE_S = 6;
const leads = async (m: RunningManager) => /^secretsync_leader 1$/m.test(await m.metrics().catch(() => ''));

/** Events a manager (by pod name) wrote at or after `since`: a deposed leader must have written none. */
async function eventsAfter(ctx: Ctx, pod: string, since: number): Promise<number> {
  const events = (await ctx.k.core.listNamespacedEvent({ namespace: NS })).items;
  return events.filter(
    (e) => e.reportingInstance === pod && new Date(e.firstTimestamp ?? e.eventTime ?? 0).getTime() >= since,
  ).length;
}

/** Waits until `old` has exited and `next` leads; one writer at a time means the exit came first. */
async function handOver(
  ctx: Ctx,
  old: RunningManager,
  next: RunningManager,
  what: string,
): Promise<{ exitedAt: number; tookOverAt: number }> {
  let exitedAt = 0;
  let tookOverAt = 0;
  await eventually(
    async () => {
      if (!exitedAt && old.child.exitCode !== null) exitedAt = Date.now();
      if (!tookOverAt && (await leads(next))) tookOverAt = Date.now();
      return tookOverAt && exitedAt ? true : undefined;
    },
    60_000,
    `the hand-over (${what})`,
    100,
  );
  if (exitedAt && exitedAt > tookOverAt)
    ctx.violations.push(`${what}: the old leader exited ${exitedAt - tookOverAt} ms after the new one took over`);
  return { exitedAt, tookOverAt };
}

interface Fault {
  name: string;
  /** Counts the Events it causes, so it starts only once the previous fault's have been written. */
  countsEvents?: boolean;
  /**
   * A fault of the change events: in place before the new values are written (`prepare`); afterwards
   * no key changed more often than values were written, and the provider receives events again.
   */
  changeEvents?: { prepare(ctx: Ctx): Promise<unknown> };
  /** Starts the fault and returns when it has ended (having lasted about FAULT_MS). */
  run(ctx: Ctx): Promise<void>;
}

const held = async (ctx: Ctx, inject: () => Promise<unknown>) => {
  await inject();
  await sleep(FAULT_MS); // the fault's length is the fault itself
  await ctx.azure.clearFaults();
};

const FAULTS: Fault[] = [
  {
    name: 'provider SIGKILLed mid-Mount, restarted after 10 s',
    async run(ctx) {
      const mounts = await mountsAnswered(ctx.provider);
      await until(
        'a Mount answered since the fault began (others still in flight)',
        async () => (await mountsAnswered(ctx.provider)) > mounts,
      );
      ctx.provider.child.kill('SIGKILL');
      await sleep(10_000); // the provider stays down this long: the fault itself
      ctx.provider = await startTheProvider(ctx);
    },
  },
  {
    name: 'provider socket removed, then recreated',
    async run(ctx) {
      unlinkSync(ctx.provider.endpoint.slice('unix://'.length));
      await sleep(FAULT_MS); // the socket stays missing this long: the fault itself
      await ctx.provider.stop();
      ctx.provider = await startTheProvider(ctx);
    },
  },
  {
    name: 'Key Vault not answering',
    run: (ctx) =>
      held(ctx, () =>
        ctx.azure.injectFault({ target: 'vault', pathPattern: '.*', status: 503, delayMs: 30_000, count: 1_000_000 }),
      ),
  },
  {
    name: 'Key Vault answering 503',
    run: (ctx) =>
      held(ctx, () => ctx.azure.injectFault({ target: 'vault', pathPattern: '.*', status: 503, count: 1_000_000 })),
  },
  {
    name: 'Key Vault 429 storm with Retry-After',
    run: (ctx) =>
      held(ctx, () =>
        ctx.azure.injectFault({
          target: 'vault',
          pathPattern: '.*',
          status: 429,
          retryAfterSeconds: 1,
          count: 1_000_000,
        }),
      ),
  },
  {
    name: 'Key Vault 429 storm without Retry-After',
    run: (ctx) =>
      held(ctx, () => ctx.azure.injectFault({ target: 'vault', pathPattern: '.*', status: 429, count: 1_000_000 })),
  },
  {
    name: 'Entra ID refusing (AADSTS90033), then recovering',
    run: (ctx) =>
      held(ctx, () =>
        ctx.azure.injectFault({ target: 'entra', pathPattern: '/oauth2/v2.0/token', status: 503, count: 1_000_000 }),
      ),
  },
  {
    name: 'Entra ID not answering',
    run: (ctx) =>
      held(ctx, () =>
        ctx.azure.injectFault({
          target: 'entra',
          pathPattern: '/oauth2/v2.0/token',
          status: 503,
          delayMs: 30_000,
          count: 1_000_000,
        }),
      ),
  },
  { name: 'kube-apiserver restarted', run: (ctx) => ctx.stack.controlPlane.restartApiserver(FAULT_MS) },
  {
    name: 'etcd restarted (apiserver up, no storage)',
    run: (ctx) => ctx.stack.controlPlane.restartEtcd(LONG ? 20_000 : FAULT_MS),
  },
  {
    name: 'change queue down (deleted, then recreated)',
    changeEvents: { prepare: (ctx) => ctx.azure.queueAdmin(ctx.events.queue).delete() },
    async run(ctx) {
      await sleep(FAULT_MS); // the queue stays gone this long: the fault itself
      await ctx.azure.createQueue(ctx.events.queue);
    },
  },
  {
    name: 'duplicate storm (every event delivered 20 times)',
    changeEvents: { prepare: (ctx) => ctx.azure.setEventDelivery(ctx.events.subscription, { copies: 20 }) },
    async run(ctx) {
      await bumpValues(ctx); // a second round of events, also twenty-fold
      await sleep(FAULT_MS); // the storm lasts this long: the fault itself
      await ctx.azure.setEventDelivery(ctx.events.subscription, { copies: 1 });
    },
  },
  {
    name: 'reordered versions (events held, then delivered newest first)',
    changeEvents: { prepare: (ctx) => ctx.azure.setEventDelivery(ctx.events.subscription, { hold: true }) },
    async run(ctx) {
      await bumpValues(ctx); // a newer version of every object, its event held too
      await sleep(FAULT_MS); // events are held this long: the fault itself
      await ctx.azure.releaseHeldEvents(ctx.events.subscription);
      await ctx.azure.setEventDelivery(ctx.events.subscription, { hold: false });
    },
  },
  {
    name: 'provider change stream cut (provider restarted, stream reopened)',
    changeEvents: { prepare: async () => undefined },
    async run(ctx) {
      await ctx.provider.stop();
      await sleep(2_000); // the stream stays cut this long: the fault itself
      ctx.provider = await startTheProvider(ctx);
    },
  },
  {
    name: 'manager SIGKILLed in a burst of writes, restarted',
    countsEvents: true,
    async run(ctx) {
      await until('the first new value written (the burst under way)', async () => (await newValuesWritten(ctx)) > 0);
      await ctx.manager.stop('SIGKILL');
      await sleep(2_000); // the manager stays down this long: the fault itself
      ctx.manager = await startTheManager(ctx);
    },
  },
  {
    name: "manager's clock 30 s ahead of the apiserver's",
    async run(ctx) {
      await ctx.manager.stop('SIGTERM');
      ctx.manager = await startTheManager(ctx, {
        env: { SSS_CLOCK_SKEW_MS: '30000' },
        nodeArgs: ['--import', join(repoRoot, 'test', 'faults', 'clock-skew.mjs')],
      });
      await sleep(FAULT_MS); // the skewed manager runs this long: the fault itself
    },
  },
  {
    name: "two managers: the leader's apiserver connection blackholed past the lease",
    async run(ctx) {
      await ctx.manager.stop('SIGTERM');
      await ctx.k.kc
        .makeApiClient(CoordinationV1Api)
        .deleteNamespacedLease({ name: 'secret-store-sync-manager', namespace: 'azure-secret-store' })
        .catch(() => undefined);
      const relay = await startRelay({ host: '127.0.0.1', port: Number(new URL(ctx.stack.info.k8s.server).port) });
      const a = await electedManager(ctx, 'manager-a', relay);
      await eventually(async () => ((await leads(a)) ? true : undefined), 30_000, 'manager-a to lead');
      const b = await electedManager(ctx, 'manager-b');
      await until(
        'manager-a to work through the new values (its first Event)',
        async () => (await eventsAfter(ctx, 'manager-a', 0)) > 0,
      );
      relay.blackhole();
      const { tookOverAt } = await handOver(ctx, a, b, 'blackholed leader');
      if ((await eventsAfter(ctx, 'manager-a', tookOverAt)) > 0)
        ctx.violations.push('the blackholed leader wrote Events after the other took over');
      await sleep(Math.max(0, FAULT_MS - LEASE_S * 1000)); // the blackhole lasts FAULT_MS in all
      relay.restore();
      await relay.close();
      ctx.manager = b;
    },
  },
  {
    name: 'two managers: the leader SIGSTOPped past the lease, then SIGCONTed',
    async run(ctx) {
      const b = ctx.manager;
      const c = await electedManager(ctx, 'manager-c');
      await until(
        'manager-b to work through the new values (the first written)',
        async () => (await newValuesWritten(ctx)) > 0,
      );
      b.child.kill('SIGSTOP');
      await eventually(async () => ((await leads(c)) ? true : undefined), 60_000, 'manager-c to take over', 100);
      await sleep(Math.max(0, FAULT_MS - LEASE_S * 1000)); // stopped FAULT_MS in all
      const continuedAt = Date.now();
      b.child.kill('SIGCONT');
      await eventually(async () => (b.child.exitCode !== null ? true : undefined), 30_000, 'the stale leader to exit');
      if (b.child.exitCode !== 1) ctx.violations.push(`the stale leader exited with ${b.child.exitCode}, not 1`);
      if ((await eventsAfter(ctx, 'manager-b', continuedAt)) > 0)
        ctx.violations.push('the stale leader wrote Events after it resumed');
      ctx.manager = c;
    },
  },
];

/** Key Vault's events into a queue, read by the provider's own identity with the queue role only. */
async function changeEvents(o: Pick<Ctx, 'stack' | 'k' | 'azure' | 'vault' | 'dir'>): Promise<Ctx['events']> {
  const queue = `faults-${Date.now().toString(36)}`;
  const url = await o.azure.createQueue(queue);
  const subscription = await o.azure.subscribeVaultEvents({ vault: o.vault, queue });
  await o.k.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'provider' } } });
  const reader = await o.azure.createWorkloadIdentity({
    name: 'faults-queue',
    issuer: o.stack.info.k8s.issuer,
    namespace: NS,
    serviceAccount: 'provider',
  });
  await o.azure.assignQueueRole('Storage Queue Data Message Processor', reader.clientId, { queue });
  const tokenFile = join(o.dir, 'provider-queue-token');
  await writeProviderToken(o.k.core, { namespace: NS, serviceAccount: 'provider', file: tokenFile });
  const providerArgs = changeQueueFlags({ url, clientId: reader.clientId, tenantId: o.azure.tenantId, tokenFile });
  return { queue, subscription, providerArgs };
}

/** After a change-event fault: events flow again, and no key changed more often than values were written. */
async function afterChangeEventFault(
  ctx: Ctx,
  o: { keyChanges: Map<string, number>; keyChangesBefore: Map<string, number>; bumps: number },
) {
  const receiving = async () =>
    metricSum(await ctx.manager.metrics().catch(() => ''), 'secretsync_change_source_receiving', { provider: 'azure' });
  await eventually(
    async () => ((await receiving()) === 1 ? true : undefined),
    90_000,
    'the provider receiving change events again',
    500,
  ).catch(() => ctx.violations.push('change events did not come back within 90 s of the fault'));
  await sleep(1_000); // the watch's last changes
  for (const [key, n] of o.keyChanges) {
    const changes = n - (o.keyChangesBefore.get(key) ?? 0);
    if (changes > o.bumps) ctx.violations.push(`${key} changed ${changes} times for ${o.bumps} new values`);
  }
}

/** The rows FAULTS_ONLY names (a part of their names), or all; a name that matches none is an error. */
function selectedFaults(only = process.env.FAULTS_ONLY): Fault[] {
  if (!only) return FAULTS;
  const picked = FAULTS.filter((f) => f.name.includes(only));
  if (!picked.length)
    throw new Error(`FAULTS_ONLY='${only}' names no fault of: ${FAULTS.map((f) => f.name).join('; ')}`);
  return picked;
}

async function setUp(stack: Stack): Promise<Ctx> {
  const k = kube();
  const azure = new AzureStack(stack.info);
  const vault = `faults-${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), 'sss-faults-'));
  const providerDir = join(dir, 'providers');
  mkdirSync(providerDir);
  await azure.createVault(vault);
  const id = await azure.createIdentity('faults');
  await azure.assignRole('Key Vault Secrets User', id.clientId, vault);
  await azure.addFederatedCredential(id.clientId, {
    name: 'fic',
    issuer: stack.info.k8s.issuer,
    subject: `system:serviceaccount:${NS}:${SA}`,
  });
  // Entra tokens that expire at once: every Mount asks Entra, so Entra's faults bite.
  await azure.setAccessTokenLifetime(id.clientId, 1);
  await k.core.createNamespace({ body: { metadata: { name: NS } } });
  await k.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
  const events = await changeEvents({ stack, k, azure, vault, dir });
  const ctx = {
    stack,
    k,
    azure,
    vault,
    dir,
    providerDir,
    version: 0,
    bumps: 0,
    events,
    violations: [],
  } as unknown as Ctx;
  await bumpValues(ctx);
  for (let c = 0; c < CLASSES; c++) {
    await k.custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: NS,
      plural: 'secretproviderclasses',
      body: secretProviderClass({
        name: `class-${c}`,
        provider: 'azure',
        parameters: azureParameters({
          keyvaultName: vault,
          tenantID: azure.tenantId,
          clientID: id.clientId,
          objects: [
            { objectName: secretName(c), objectType: 'secret' },
            { objectName: 'shared', objectType: 'secret' },
          ],
        }),
      }),
    });
  }
  ctx.provider = await startTheProvider(ctx);
  ctx.manager = await startTheManager(ctx);
  return ctx;
}

async function main(): Promise<void> {
  if (!process.env.NODE_OPTIONS?.includes('preload.mjs')) throw new Error(`run with NODE_OPTIONS=--import ${PRELOAD}`);
  const started = Date.now();
  const faults = selectedFaults();
  log(
    `fault matrix: ${CLASSES * PER_CLASS} SecretSyncs over ${CLASSES} classes, ${faults.length} of ${FAULTS.length} faults of ${FAULT_MS / 1000} s, on ${datastoreFromEnv()}`,
  );
  const stack = await startStack({ manifests: yamlFilesIn(join(repoRoot, 'deploy', 'crds')), log: () => undefined });
  Object.assign(process.env, toEnv(stack.info), { NODE_EXTRA_CA_CERTS: stack.info.caFile });
  let ctx: Ctx | undefined;
  let watch: SecretWatch | undefined;
  try {
    ctx = await setUp(stack);
    // Secrets of others, named like SecretSyncs: the manager must leave them exactly as they are.
    const foreign = new Map<string, string>();
    for (let f = 0; f < FOREIGN; f++) {
      const s = await ctx.k.core.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name: `foreign-${f}` }, stringData: { theirs: 'untouched' } },
      });
      foreign.set(`foreign-${f}`, s.metadata!.resourceVersion!);
    }
    watch = new SecretWatch(ctx.k, foreign);
    await watch.start();
    const syncs = [
      ...Array.from({ length: CLASSES * PER_CLASS }, (_, i) => [Math.floor(i / PER_CLASS), i % PER_CLASS] as const).map(
        ([c, j]) => ({ name: syncName(c, j), cls: c }),
      ),
      ...Array.from({ length: FOREIGN }, (_, f) => ({ name: `foreign-${f}`, cls: 0 })),
    ];
    await pool(syncs, 8, async ({ name, cls }) => {
      await ctx!.k.custom.createNamespacedCustomObject({
        group: 'secret-sync.x-k8s.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'secretsyncs',
        body: secretSync({
          name,
          sa: SA,
          spc: `class-${cls}`,
          data: [
            { sourcePath: secretName(cls), targetKey: 'own' },
            { sourcePath: 'shared', targetKey: 'shared' },
          ],
        }),
      });
    });
    await eventually(async () => ((await converged(ctx!)) ? true : undefined), 120_000, 'the initial sync', 1_000);
    log(`initial sync of ${CLASSES * PER_CLASS} done in ${round((Date.now() - started) / 1000)} s since start`);

    const results: FaultResult[] = [];
    for (const fault of faults) {
      const c = ctx;
      if (fault.countsEvents) await eventsSettled(c);
      // Before the new values: a change they cause, and its Event, falls inside what is counted.
      const changesBefore = new Map(watch.dataChanges);
      const keyChangesBefore = new Map(watch.keyChanges);
      const eventsBefore = new Set(
        (await c.k.core.listNamespacedEvent({ namespace: NS })).items.map((e) => e.metadata!.name!),
      );
      const bumpsBefore = c.bumps;
      await fault.changeEvents?.prepare(c);
      await bumpValues(c); // new values while the fault lasts: they must land once it is over
      const failedBefore = await failedReconciles(c.manager);
      const statusDuringFault: Record<string, number> = {};
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sleep(Math.min(3_000, FAULT_MS / 2)); // the sampling period
          if (!sampling) break;
          for (const [r, n] of Object.entries(await readyReasons(c.k).catch(() => ({}))))
            statusDuringFault[r] = Math.max(statusDuringFault[r] ?? 0, n);
        }
      })();
      const faultStart = Date.now();
      await fault.run(c);
      const faultEnd = Date.now();
      sampling = false;
      await sampler;
      await eventually(
        async () => ((await converged(c)) ? true : undefined),
        180_000,
        `convergence after "${fault.name}"`,
        250,
      );
      const convergeSeconds = round((Date.now() - faultEnd) / 1000);
      const failed =
        (await failedReconciles(c.manager)) - (fault.name.startsWith('manager SIGKILLed') ? 0 : failedBefore);
      if (fault.countsEvents) {
        // A second for the watch's last changes and the last Events: what follows counts that nothing more came.
        await sleep(1_000);
        // One new value: each key changes once — a restart must not write a value twice (or undo one).
        for (const [key, n] of watch.keyChanges)
          if (n - (keyChangesBefore.get(key) ?? 0) > 1)
            watch.violations.push(
              `${key} changed ${n - (keyChangesBefore.get(key) ?? 0)} times for one new value across the manager restart`,
            );
        const changes = new Map([...watch.dataChanges].map(([name, n]) => [name, n - (changesBefore.get(name) ?? 0)]));
        watch.violations.push(...(await eventStorm(c, eventsBefore, changes)));
      }
      if (fault.changeEvents)
        await afterChangeEventFault(c, {
          keyChanges: watch.keyChanges,
          keyChangesBefore,
          bumps: c.bumps - bumpsBefore,
        });
      watch.violations.push(...c.violations.splice(0));
      const r: FaultResult = {
        fault: fault.name,
        faultSeconds: round((faultEnd - faultStart) / 1000),
        convergeSeconds,
        failedReconciles: Math.max(0, failed),
        statusDuringFault,
      };
      results.push(r);
      log(
        `fault: ${r.fault} — lasted ${r.faultSeconds} s; converged ${r.convergeSeconds} s after; failed reconciles ${r.failedReconciles}; Ready during: ${JSON.stringify(statusDuringFault)}`,
      );
    }
    // Foreign Secrets: still exactly as their owner wrote them.
    for (const [name, rv] of foreign) {
      const s = await ctx.k.core.readNamespacedSecret({ namespace: NS, name });
      if (s.metadata?.resourceVersion !== rv || s.metadata?.labels?.[MANAGED_LABEL] !== undefined)
        watch.violations.push(`foreign Secret ${name} changed`);
    }
    const readyAtEnd = await readyReasons(ctx.k);
    log(
      `invariants: ${watch.violations.length} violations${watch.violations.length ? `: ${watch.violations.slice(0, 10).join('; ')}` : ''}`,
    );
    mkdirSync(join(OUT, '..'), { recursive: true });
    writeFileSync(
      OUT,
      JSON.stringify(
        {
          long: LONG,
          secretSyncs: CLASSES * PER_CLASS,
          foreignSecrets: FOREIGN,
          faultSeconds: FAULT_MS / 1000,
          rotationSeconds: ROTATION_S,
          results,
          violations: watch.violations,
          readyAtEnd,
          totalSeconds: round((Date.now() - started) / 1000),
        },
        null,
        2,
      ) + '\n',
    );
    log(`figures in ${OUT}`);
    if (watch.violations.length) process.exitCode = 1;
  } finally {
    watch?.stop();
    await ctx?.manager?.stop('SIGKILL').catch(() => undefined);
    await ctx?.provider?.stop('SIGKILL').catch(() => undefined);
    await stack.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
