// The manager's loop: informers feed a two-lane queue, N workers reconcile, and what each run says
// should happen next — the rotation, an expiry check, a retry with backoff — is scheduled by one
// policy (schedule.ts).
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { errorCode, errorMessage, errorStack, type ChangeNotice } from '@secret-store-sync/proto';
import {
  SPC_GROUP,
  SPC_PLURAL,
  SPC_VERSION,
  SYNC_GROUP,
  SYNC_PLURAL,
  SYNC_VERSION,
  keyOf,
  type SecretProviderClass,
  type SecretSync,
} from './api.js';
import type { Config } from './config.js';
import { ChangeIndex } from './change-index.js';
import { ChangeStreams } from './changes.js';
import { EventRecorder } from './events.js';
import { nextExpiryCheck } from './expiry-checks.js';
import { ExpirySeries } from './expiry-series.js';
import type { Hasher } from './hash.js';
import { NotLeaderError, type KubeClients } from './kube-client.js';
import { supervise, type Collection, type Supervised } from './informers.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { Providers } from './provider.js';
import { ProviderSockets, ProviderWaiters } from './provider-sockets.js';
import { Backoff, WorkQueue, type QueueItem } from './queue.js';
import { CHANGE_LOGS, FAILURES } from './messages.js';
import { SyncError } from './reasons.js';
import { reconcile } from './reconcile.js';
import { appsWorkloadApi, isValueChange, Restarts } from './restarts.js';
import { NOTHING, schedule, type Next, type Scheduling } from './schedule.js';
import { SecretWriter } from './secret-writer.js';
import { FRESH, SharedMounts, type Share } from './shared-mounts.js';
import { logOutcome } from './sync-log.js';
import { countByReadyReason, StatusReporter, storedChangeKeys, storedExpiry, type Outcome } from './status.js';
import { apiMessage, TokenCache } from './tokens.js';

/** What the manager's loop is built from: parsed configuration, API clients, and its outputs. */
export interface ControllerDeps {
  kc: KubeConfig;
  clients: KubeClients;
  cfg: Config;
  hasher: Hasher;
  log: Logger;
  metrics: Metrics;
}

export class Controller {
  private readonly queue: WorkQueue;
  private readonly backoff: Backoff;
  private secretSyncs!: Supervised<SecretSync>;
  private spcs!: Supervised<SecretProviderClass>;
  private readonly workers: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly tokens: TokenCache;
  private readonly providers: Providers;
  private readonly mounts: SharedMounts;
  private readonly writer: SecretWriter;
  private readonly reporter: StatusReporter;
  private readonly custom: CustomObjectsApi;
  private pruneTimer?: NodeJS.Timeout;
  private readonly expirySeries: ExpirySeries;
  /** When each SecretSync's last expiry check ran: the floor of the next (expiry-checks.ts). */
  private readonly lastExpiryCheck = new Map<string, number>();
  private readonly scheduling: Scheduling;
  /** The generation at which each SecretSync last found its class missing (see `quietMiss`). */
  private readonly classMissedAt = new Map<string, number>();
  /** SecretSyncs whose provider had no socket at their last sync: synced again when it appears. */
  private readonly waitingForProvider = new ProviderWaiters();
  private readonly sockets: ProviderSockets;
  /** Change key → SecretSyncs, and the providers' notice streams (while leading). */
  private readonly changeIndex: ChangeIndex;
  private readonly changeStreams: ChangeStreams;
  /** Rollout restarts of the workloads that opted in (--restarts); undefined when off. */
  private readonly restarts?: Restarts;

  private readonly kc: KubeConfig;
  private readonly cfg: Config;
  private readonly hasher: Hasher;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor({ kc, clients, cfg, hasher, log, metrics }: ControllerDeps) {
    this.kc = kc;
    this.cfg = cfg;
    this.hasher = hasher;
    this.log = log;
    this.metrics = metrics;
    this.queue = new WorkQueue((lane, depth) => metrics.queueDepth.set({ lane }, depth), cfg.workersPerNamespace);
    // Retries back off to 5 minutes — but never wait longer than a healthy SecretSync waits for its
    // next check: after an outage, failed ones recover within one rotation interval.
    this.backoff = new Backoff(
      1_000,
      cfg.rotationIntervalSeconds > 0
        ? Math.min(5 * 60_000, Math.max(5_000, cfg.rotationIntervalSeconds * 1000))
        : 5 * 60_000,
    );
    const core = clients.make(CoreV1Api);
    this.custom = clients.make(CustomObjectsApi);
    this.tokens = new TokenCache(core, cfg.tokenExpirationSeconds, metrics);
    this.providers = new Providers(cfg.providerDir, cfg.providerTimeoutSeconds * 1000, cfg.maxMessageBytes, metrics);
    this.sockets = new ProviderSockets({ dir: cfg.providerDir, onAppear: (p) => this.onProviderSocket(p) });
    this.changeIndex = new ChangeIndex(
      { perSecretSync: cfg.maxChangeKeysPerSecretSync, total: cfg.maxChangeKeys },
      (reason, n) => metrics.changeKeysDropped.inc({ reason }, n),
    );
    metrics.changeKeysSource.size = () => this.changeIndex.size();
    this.changeStreams = new ChangeStreams({
      watch: (provider, opts) => this.providers.watchChanges(provider, opts),
      onChanged: (provider, notice) => this.onChangeNotice(provider, notice),
      log,
      metrics,
    });
    this.mounts = new SharedMounts(cfg.rotationShareSeconds * 1000, () => metrics.sharedMounts.inc());
    this.writer = new SecretWriter(core, metrics);
    this.expirySeries = new ExpirySeries(metrics.objectExpiry, metrics.expirySeriesDropped, {
      perSecretSync: cfg.maxExpirySeriesPerSecretSync,
      total: cfg.maxExpirySeries,
    });
    const events = new EventRecorder(core, {
      instance: cfg.podName,
      log,
      onDropped: () => metrics.eventsDropped.inc(),
    });
    this.reporter = new StatusReporter(this.custom, events, cfg.expiryWarningSeconds * 1000);
    if (cfg.restarts.enabled)
      this.restarts = new Restarts({
        api: appsWorkloadApi(clients.make(AppsV1Api)),
        versionsOf: (ns, name) => this.secretSyncs.get(ns, name)?.status?.syncedObjectVersions,
        events,
        metrics,
        log,
        debounceMs: cfg.restarts.debounceSeconds * 1000,
        minIntervalMs: cfg.restarts.minIntervalSeconds * 1000,
      });
    this.scheduling = {
      queue: this.queue,
      backoff: this.backoff,
      intervalMs: Math.max(0, cfg.rotationIntervalSeconds * 1000),
      expiryCheckMs: (key, expiresOn) => this.nextExpiryCheck(key, expiresOn),
      now: Date.now,
      random: Math.random,
    };
  }

  /** Starts watching (always: the cache also answers /readyz) — but works only after `lead()`. */
  watch(): Promise<void> {
    this.secretSyncs = supervise<SecretSync>(this.kc, this.collection(SYNC_GROUP, SYNC_VERSION, SYNC_PLURAL), this.log);
    this.spcs = supervise<SecretProviderClass>(this.kc, this.collection(SPC_GROUP, SPC_VERSION, SPC_PLURAL), this.log);
    return Promise.all([this.secretSyncs.synced, this.spcs.synced]).then(() => undefined);
  }

  /** A custom resource collection in the watched namespace (or all of them). */
  private collection<T extends KubernetesObject>(group: string, version: string, plural: string): Collection<T> {
    const ns = this.cfg.namespace;
    return {
      what: plural,
      path: `/apis/${group}/${version}${ns ? `/namespaces/${ns}` : ''}/${plural}`,
      // Pages of 500: the informer slims each before reading the next (informers.ts).
      listPage: (cont) =>
        (ns
          ? this.custom.listNamespacedCustomObject({
              group,
              version,
              namespace: ns,
              plural,
              limit: 500,
              _continue: cont,
            })
          : this.custom.listClusterCustomObject({ group, version, plural, limit: 500, _continue: cont })) as never,
    };
  }

  /** Begins reconciling: called once this manager holds the lease (or at once without election). */
  lead(): void {
    const ss = this.secretSyncs.informer;
    ss.on('add', (o) => this.onSecretSync(o, true));
    ss.on('update', (o) => this.onSecretSync(o, false));
    ss.on('delete', (o) => {
      this.queue.forget(keyOf(o));
      this.lastExpiryCheck.delete(keyOf(o));
      this.classMissedAt.delete(keyOf(o));
      this.waitingForProvider.set(keyOf(o), undefined);
      this.changeIndex.delete(keyOf(o));
      this.writer.forget(o.metadata.uid);
      this.setExpiryMetrics(o, undefined);
    });
    this.spcs.informer.on('add', (o) => this.onSpc(o));
    this.spcs.informer.on('update', (o) => this.onSpc(o));
    for (const o of this.secretSyncs.list()) this.onSecretSync(o, true);
    this.metrics.statusSource.count = () => countByReadyReason(this.secretSyncs.list(), this.cfg.controllerName);
    this.sockets.start();
    // No keys remembered, no notice could reach a SecretSync: leave the provider's events alone.
    if (this.cfg.maxChangeKeysPerSecretSync > 0) this.changeStreams.start(this.sockets.providers());
    for (let i = 0; i < this.cfg.workers; i++) this.workers.push(this.work());
    this.pruneTimer = setInterval(() => {
      this.tokens.prune();
      this.mounts.prune();
    }, 30_000);
    this.pruneTimer.unref();
  }

  /** This manager no longer leads (it exits next): the provider keeps its change events for the next leader. */
  stepDown(): void {
    this.changeStreams.stop();
  }

  private onSecretSync(ss: SecretSync, initial: boolean): void {
    if ((ss.spec?.secretSyncControllerName ?? '') !== this.cfg.controllerName) return;
    const key = keyOf(ss);
    this.restoreChangeKeys(key, ss);
    if (isUpToDate(ss)) {
      // Our own status write, or a restart: nothing changed, keep the rotation schedule (spread out).
      if (!initial) return;
      const expiresOn = storedExpiry(ss);
      this.setExpiryMetrics(ss, expiresOn);
      const synced = ss.status?.lastSuccessfulSyncTime;
      return this.schedule(key, { kind: 'rotate', lastSyncAt: synced ? Date.parse(synced) : 0, expiresOn });
    }
    // A status-only change of a failed one: its retry is scheduled.
    if (!initial && observedGeneration(ss) === ss.metadata.generation) return;
    this.schedule(key, { kind: 'syncNow' });
  }

  /**
   * The change keys the SecretSync's last successful Mount named, from its status, when this
   * process has not mounted it: after a restart or a handover its notices reach it at once, not
   * after its next poll (and without a Mount to learn them). The provider is its class's.
   */
  private restoreChangeKeys(key: string, ss: SecretSync): void {
    const keys = storedChangeKeys(ss);
    if (keys.length === 0) return;
    const provider = this.spcs.get(ss.metadata.namespace, ss.spec?.secretProviderClassName ?? '')?.spec?.provider;
    if (provider) this.changeIndex.restore(key, provider, keys);
  }

  private onSpc(spc: SecretProviderClass): void {
    for (const ss of this.secretSyncs.list(spc.metadata.namespace)) {
      if (
        ss.spec?.secretProviderClassName === spc.metadata.name &&
        (ss.spec.secretSyncControllerName ?? '') === this.cfg.controllerName
      ) {
        // A class change may change what the Secret should hold: re-sync its users now.
        this.schedule(keyOf(ss), { kind: 'syncNow' });
      }
    }
  }

  /** A provider started (or restarted): those that found it missing sync now, not at their next retry. */
  private onProviderSocket(provider: string): void {
    this.changeStreams.appeared(provider);
    const keys = this.waitingForProvider.take(provider);
    if (keys.length === 0) return;
    this.log.info('provider socket appeared; syncing the SecretSyncs waiting for it', { provider, count: keys.length });
    for (const key of keys) this.schedule(key, { kind: 'syncNow' });
  }

  /** Notes what the key waits for; a socket that appeared since the sync looked is seen here. */
  private waitForProvider(key: string, provider: string | undefined): void {
    this.waitingForProvider.set(key, provider);
    if (provider !== undefined && this.sockets.has(provider)) this.onProviderSocket(provider);
  }

  /**
   * A provider's change notice: the SecretSyncs whose last Mount named a key sync now, ahead of
   * rotations, each taking only a provider read started after this moment. The queue holds each
   * once however many notices name it; a key nobody's Mount named costs a lookup.
   */
  private onChangeNotice(provider: string, notice: ChangeNotice): void {
    const keys = this.changeIndex.noticed(provider, notice.keys, this.mounts.mark());
    for (const key of keys) this.queue.add(key, 'fast');
    if (keys.length) this.metrics.changeEnqueued.inc({ provider }, keys.length);
    this.log.debug(CHANGE_LOGS.notice, {
      provider,
      kind: notice.kind,
      keys: notice.keys.length,
      secretSyncs: keys.length,
    });
  }

  private intervalMs(): number {
    return this.cfg.rotationIntervalSeconds * 1000;
  }

  private schedule(key: string, next: Next): void {
    // Synced afresh for its own reason: only a notice after this makes it a change-driven run.
    if (next.kind === 'syncNow') this.changeIndex.clearNotice(key);
    schedule(key, next, this.scheduling);
  }

  private nextExpiryCheck(key: string, expiresOn: Record<string, Date> | undefined): number | undefined {
    const last = this.lastExpiryCheck.get(key);
    const o = {
      now: Date.now(),
      warnMs: this.cfg.expiryWarningSeconds * 1000,
      floorMs: this.cfg.expiryCheckMinIntervalSeconds * 1000,
    };
    return nextExpiryCheck(Object.values(expiresOn ?? {}), last === undefined ? o : { ...o, lastCheckAt: last });
  }

  /**
   * Whether a scheduled re-check of a healthy SecretSync is its rotation, not an expiry check:
   * rotations are scheduled at least 90 % of the interval after the last sync (1 s of slack for
   * rounding).
   */
  private rotationDue(ss: SecretSync): boolean {
    if (this.cfg.rotationIntervalSeconds <= 0) return false;
    const last = Date.parse(ss.status?.lastSuccessfulSyncTime ?? '');
    return !(last + 0.9 * this.intervalMs() - 1_000 > Date.now());
  }

  /** Recomputes the Expiring condition from the stored expiry times: a status write when it changed, never a Mount. */
  private async checkExpiry(key: string, ss: SecretSync): Promise<Next> {
    const now = Date.now();
    this.lastExpiryCheck.set(key, now);
    let wrote: boolean;
    try {
      wrote = await this.reporter.reportExpiry(ss, new Date(now));
    } catch (e) {
      // The cache was behind a newer status: check again once it has caught up.
      if (errorCode(e) === 409) return { kind: 'recheck', afterMs: 5_000 };
      return this.statusWriteFailed(key, e);
    }
    this.log.debug('expiry check', { secretSync: key, wrote });
    const synced = Date.parse(ss.status?.lastSuccessfulSyncTime ?? '') || now;
    return { kind: 'rotate', lastSyncAt: synced, expiresOn: storedExpiry(ss) };
  }

  private statusWriteFailed(key: string, e: unknown): Next {
    const code = errorCode(e);
    if (code === 404) return NOTHING; // deleted meanwhile
    // Not leading any more: nothing was written, and the elector is about to stop this process.
    if (e instanceof NotLeaderError) return NOTHING;
    this.log.warn('status write failed', { secretSync: key, error: errorMessage(e) });
    return { kind: 'statusWriteFailed' };
  }

  /** A series per synced object that reports an expiry, within the caps; `undefined` removes the SecretSync's series. */
  private setExpiryMetrics(ss: SecretSync, expiresOn: Record<string, Date> | undefined): void {
    this.expirySeries.set(ss.metadata.namespace, ss.metadata.name, expiresOn);
  }

  private async work(): Promise<void> {
    for (;;) {
      const item = await this.queue.get();
      if (!item) return;
      this.metrics.queueWait.observe({ lane: item.lane }, item.waitedMs / 1000);
      const p = this.handle(item)
        .then((next) => this.schedule(item.key, next))
        .catch((e: unknown) => this.log.error('worker error', { key: item.key, error: errorStack(e) }));
      this.inFlight.add(p);
      await p;
      this.inFlight.delete(p);
      this.queue.done(item.key);
    }
  }

  /** One run of a queued item; answers what should happen next (schedule.ts). */
  private async handle(item: QueueItem): Promise<Next> {
    const key = item.key;
    const [namespace, name] = key.split('/') as [string, string];
    const ss = this.secretSyncs.get(namespace, name);
    const notice = this.changeIndex.takeNotice(key);
    if (!ss || (ss.spec?.secretSyncControllerName ?? '') !== this.cfg.controllerName) {
      this.changeIndex.delete(key);
      return NOTHING;
    }
    // Being deleted: writing now would only make a Secret for the garbage collector.
    if (ss.metadata.deletionTimestamp) return NOTHING;
    // A scheduled re-check of a SecretSync still healthy is its rotation (which may share a Mount)
    // — or, before its rotation is due, an expiry check. A run a change notice caused may share only
    // a read that started after the notice. Anything else syncs afresh.
    const rotation = item.rotation && isUpToDate(ss);
    if (rotation && !this.rotationDue(ss)) return this.checkExpiry(key, ss);
    const share: Share = rotation
      ? { kind: 'rotation' }
      : notice !== undefined
        ? { kind: 'changed', after: notice }
        : FRESH;
    const started = process.hrtime.bigint();
    const { outcome, next, missing } = await reconcile(
      ss,
      {
        cfg: this.cfg,
        spc: (ns, n) => this.secretProviderClass(ns, n),
        tokens: this.tokens,
        providers: this.providers,
        mounts: this.mounts,
        hasher: this.hasher,
        writer: this.writer,
        log: this.log,
        changes: this.changeIndex,
      },
      share,
    );
    if (missing?.kind === 'secretProviderClass' && this.quietMiss(key, ss.metadata.generation ?? 0)) return next;
    this.waitForProvider(key, missing?.kind === 'provider' ? missing.name : undefined);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.metrics.reconciles.inc({ reason: outcome.reason });
    this.metrics.reconcileDuration.observe({ reason: outcome.reason }, seconds);
    try {
      await this.reporter.report(ss, outcome);
    } catch (e) {
      return this.statusWriteFailed(key, e);
    }
    logOutcome(this.log, { secretSync: key, outcome, durationMs: Math.round(seconds * 1000) });
    if (outcome.ok) this.setExpiryMetrics(ss, outcome.expiresOn);
    // After the status write: a failed one is retried, and the retry detects the change again.
    this.restartFor(ss, outcome);
    return next;
  }

  /** A real value change rolls the workloads that named the SecretSync (restarts.ts). */
  private restartFor(ss: SecretSync, outcome: Outcome): void {
    if (outcome.ok && this.restarts && isValueChange(ss, outcome)) this.restarts.changed(ss, outcome.versions);
  }

  /**
   * A class from the cache — or, when the cache has none, from the apiserver: the class's watch may
   * be behind the SecretSync's (both applied together; a watch restarting), and a quorum read says
   * whether it really is missing. Bounded by the API call deadline; a failed read is a retried
   * failure, not "not found".
   */
  private async secretProviderClass(namespace: string, name: string): Promise<SecretProviderClass | undefined> {
    const cached = this.spcs.get(namespace, name);
    if (cached) return cached;
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: SPC_GROUP,
        version: SPC_VERSION,
        namespace,
        plural: SPC_PLURAL,
        name,
      })) as SecretProviderClass;
    } catch (e) {
      if (errorCode(e) === 404) return undefined;
      throw new SyncError(FAILURES.spcUnreadable({ name, detail: apiMessage(e) }), {
        cause: e,
        upstream: { code: errorCode(e) },
      });
    }
  }

  /**
   * The first time a generation of a SecretSync finds its class missing, nothing is reported: a
   * class applied together with (or just after) its SecretSync arrives within moments, and its
   * informer event re-syncs the SecretSync at once (onSpc). Only a class still missing at the
   * retry (5 s later) is a Warning.
   */
  private quietMiss(key: string, generation: number): boolean {
    if (this.classMissedAt.get(key) === generation) return false;
    this.classMissedAt.set(key, generation);
    this.log.debug('SecretProviderClass not found yet; retrying before reporting it', { secretSync: key });
    return true;
  }

  /** Stops taking work and waits (bounded) for in-flight reconciles. */
  async stop(graceMs: number): Promise<void> {
    this.queue.close();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.sockets.stop();
    this.changeStreams.stop();
    await this.restarts?.stop();
    await Promise.race([Promise.all([...this.inFlight]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    await Promise.allSettled([this.secretSyncs?.stop(), this.spcs?.stop()]);
    this.providers.close();
  }

  queueDepths(): { fast: number; slow: number; scheduled: number } {
    return { fast: this.queue.depth('fast'), slow: this.queue.depth('slow'), scheduled: this.queue.scheduled() };
  }
}

/**
 * The generation the last outcome was for. The Ready condition's own observedGeneration first:
 * the upstream SecretSync CRD (left in place where the Secret Store extension or the upstream
 * chart was installed) has no status.observedGeneration, and the apiserver drops it silently.
 */
function observedGeneration(ss: SecretSync): number | undefined {
  return ss.status?.conditions?.find((c) => c.type === 'Ready')?.observedGeneration ?? ss.status?.observedGeneration;
}

/** Last synced successfully at its current generation. */
function isUpToDate(ss: SecretSync): boolean {
  const st = ss.status;
  return (
    !!st?.syncHash &&
    observedGeneration(ss) === ss.metadata.generation &&
    !!st.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
  );
}
