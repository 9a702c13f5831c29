// Rollout restarts of the workloads that asked for them, when a SecretSync's value really changed.
//
// A Deployment, StatefulSet or DaemonSet opts in on itself: the label RESTART_LABEL="true" and the
// annotation RESTART_SECRETSYNCS_ANNOTATION naming up to 16 SecretSyncs of its own namespace (a
// SecretSync's Secret has its name: naming the Secret is naming the SecretSync). A restart is what
// `kubectl rollout restart` does — one pod-template annotation changes — but its value is derived
// from the synced versions of the SecretSyncs the workload names, not from the clock: writing it
// again for the same versions changes nothing, so a replay, a second leader or a restarted manager
// cannot roll anything.
//
// The trigger is the sync whose write changed the Secret (isValueChange): its hash differs from the
// one the status holds AND the provider's object versions differ from the stored ones. So neither
// the first sync, a no-change rotation, a drift repair (same hash), a hash key lost with a restart
// (every Secret rewritten once, same versions), a forced sync nor a failed sync rolls anything.
// Changes of a namespace are batched for the debounce window — one timer per namespace, a bounded
// set of names in each, so no namespace takes another's slot — then the namespace's labelled
// workloads are listed (no informer: the manager's memory does not grow with the cluster's
// workloads) and each one naming a changed SecretSync is patched once, at most once per minimum
// interval. Not durable: a manager that dies inside a window loses that window's rollouts (README).
import { errorCode, errorMessage } from '@secret-store-sync/proto';
import type { AppsV1Api, V1ObjectMeta } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import type { SecretSync } from './api.js';
import type { EventRecorder } from './events.js';
import type { Logger } from './log.js';
import { RESTARTS } from './messages.js';
import type { Metrics } from './metrics.js';
import { MERGE_PATCH } from './status.js';

/** On a workload: it opts in to restarts (value "true"). */
export const RESTART_LABEL = 'secret-store-sync.x-k8s.io/restart-on-change';
/** On a workload: the SecretSyncs (or their Secrets) of its namespace it restarts for, comma-separated. */
export const RESTART_SECRETSYNCS_ANNOTATION = 'secret-store-sync.x-k8s.io/restart-secretsyncs';
/** On a workload's pod template: what the manager sets to roll it — a digest of the synced versions. */
export const RESTARTED_FOR_ANNOTATION = 'secret-store-sync.x-k8s.io/restarted-for';
export const MAX_SECRETSYNCS_PER_WORKLOAD = 16;
/** Changed SecretSyncs one namespace's window remembers; beyond, a change is dropped (capacity). */
const MAX_CHANGED_PER_NAMESPACE = 256;
/** Workloads of one kind looked at per namespace and window (one list page). */
const MAX_WORKLOADS_PER_KIND = 500;
/** Tries of a window whose list or patch failed, before its rollouts are given up (logged). */
const MAX_ATTEMPTS = 5;
const FIELD_MANAGER = 'secret-store-sync-manager';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export type Versions = readonly { id: string; version: string }[];
export type SkipReason =
  'debounced' | 'rate_limited' | 'unchanged' | 'not_opted_in' | 'invalid_annotation' | 'capacity' | 'failed';
export const KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type Kind = (typeof KINDS)[number];

export interface Workload {
  kind: Kind;
  metadata: V1ObjectMeta;
  /** The pod template's annotations. */
  template: Record<string, string>;
}

/** The apps/v1 calls restarts make: a labelled list per kind, and the one-annotation patch. */
export interface WorkloadApi {
  list(kind: Kind, namespace: string): Promise<Workload[]>;
  patch(w: Workload, value: string): Promise<void>;
}

/**
 * Whether a successful sync changed the Secret's value: a write whose hash differs from the stored
 * one, with other object versions than the stored ones (a status without versions — the upstream
 * CRD drops them — leaves the hash alone to say).
 */
export function isValueChange(ss: SecretSync, o: { hash: string; versions: Versions; wrote: boolean }): boolean {
  const before = ss.status?.syncHash;
  if (!before || !o.wrote || o.hash === before) return false;
  const stored = ss.status?.syncedObjectVersions;
  return stored === undefined || versionsKey(stored) !== versionsKey(o.versions);
}

const versionsKey = (vs: Versions) =>
  JSON.stringify(vs.map((v) => [v.id, v.version]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)));

/** The names a workload's annotation lists, or why it lists none usable. */
export function namedSecretSyncs(
  annotations: Record<string, string> | undefined,
): { names: string[] } | { skip: 'not_opted_in' | 'invalid_annotation' } {
  const raw = annotations?.[RESTART_SECRETSYNCS_ANNOTATION];
  if (raw === undefined || raw.trim() === '') return { skip: 'not_opted_in' };
  const names = [
    ...new Set(
      raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (names.length > MAX_SECRETSYNCS_PER_WORKLOAD || !names.every((n) => n.length <= 253 && DNS_SUBDOMAIN.test(n)))
    return { skip: 'invalid_annotation' };
  return { names };
}

/** The pod-template annotation's value for the named SecretSyncs' versions: the same versions, the same value. */
export function restartValue(named: [string, Versions][]): string {
  const canonical = named
    .map(([name, vs]) => [name, versionsKey(vs)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 32)}`;
}

/** The WorkloadApi over client-node's AppsV1Api. */
export function appsWorkloadApi(apps: AppsV1Api): WorkloadApi {
  const labelSelector = `${RESTART_LABEL}=true`;
  const page = { labelSelector, limit: MAX_WORKLOADS_PER_KIND };
  const lists: Record<Kind, (namespace: string) => Promise<{ items: { metadata?: V1ObjectMeta; spec?: unknown }[] }>> =
    {
      Deployment: (namespace) => apps.listNamespacedDeployment({ namespace, ...page }),
      StatefulSet: (namespace) => apps.listNamespacedStatefulSet({ namespace, ...page }),
      DaemonSet: (namespace) => apps.listNamespacedDaemonSet({ namespace, ...page }),
    };
  type Patch = { name: string; namespace: string; body: object; fieldManager: string };
  const patches: Record<Kind, (p: Patch) => Promise<unknown>> = {
    Deployment: (p) => apps.patchNamespacedDeployment(p, MERGE_PATCH),
    StatefulSet: (p) => apps.patchNamespacedStatefulSet(p, MERGE_PATCH),
    DaemonSet: (p) => apps.patchNamespacedDaemonSet(p, MERGE_PATCH),
  };
  return {
    async list(kind, namespace) {
      const { items } = await lists[kind](namespace);
      return items.map((o) => ({
        kind,
        metadata: o.metadata ?? {},
        template:
          (o.spec as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined)?.template
            ?.metadata?.annotations ?? {},
      }));
    },
    async patch(w, value) {
      await patches[w.kind]({
        name: w.metadata.name!,
        namespace: w.metadata.namespace!,
        // The resourceVersion: the workload as listed (labelled, naming the SecretSync), or a 409.
        body: {
          metadata: { resourceVersion: w.metadata.resourceVersion },
          spec: { template: { metadata: { annotations: { [RESTARTED_FOR_ANNOTATION]: value } } } },
        },
        fieldManager: FIELD_MANAGER,
      });
    },
  };
}

export interface RestartOptions {
  api: WorkloadApi;
  /** A SecretSync's synced versions as its status holds them (the informer's cache). */
  versionsOf(namespace: string, name: string): Versions | undefined;
  events: Pick<EventRecorder, 'record' | 'recordOn'>;
  metrics: Pick<Metrics, 'restarts' | 'restartsSkipped'>;
  log: Logger;
  debounceMs: number;
  minIntervalMs: number;
  now?: () => number;
}

/** A SecretSync that changed: enough of it for its Event, and the versions it changed to. */
interface Change {
  ss: SecretSync;
  versions: Versions;
}

interface Batch {
  timer: NodeJS.Timeout;
  changes: Map<string, Change>;
  attempts: number;
}

/** What one workload's look at a window's changes came to. */
type Verdict =
  | { kind: 'rolled' | 'none' }
  | { kind: 'skipped'; reason: SkipReason }
  | { kind: 'later'; at: number; names: string[]; failed?: boolean };

export class Restarts {
  /** A pending window per namespace. */
  private readonly batches = new Map<string, Batch>();
  /** When each workload (by namespace, then kind/name) was last rolled; kept for the minimum interval. */
  private readonly rolled = new Map<string, Map<string, number>>();
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: RestartOptions) {
    this.now = o.now ?? Date.now;
  }

  /** A SecretSync's value changed (the sync's status is written): its workloads roll when the window ends. */
  changed(ss: SecretSync, versions: Versions): void {
    if (this.stopped) return;
    const change: Change = { ss: refOf(ss), versions };
    const ns = ss.metadata.namespace;
    if (this.batches.has(ns)) this.o.metrics.restartsSkipped.inc({ reason: 'debounced' });
    this.pend(ns, [change], { afterMs: this.o.debounceMs, attempts: 0 });
  }

  /** Adds changes to the namespace's window, opening one that ends in `afterMs` if none is open. */
  private pend(ns: string, changes: Change[], o: { afterMs: number; attempts: number }): void {
    let batch = this.batches.get(ns);
    if (!batch) {
      const timer = setTimeout(() => this.track(this.fire(ns)), Math.max(0, o.afterMs));
      timer.unref();
      batch = { timer, changes: new Map(), attempts: o.attempts };
      this.batches.set(ns, batch);
    }
    for (const c of changes) {
      const name = c.ss.metadata.name;
      if (!batch.changes.has(name) && batch.changes.size >= MAX_CHANGED_PER_NAMESPACE) {
        this.o.metrics.restartsSkipped.inc({ reason: 'capacity' });
        this.o.log.warn('restarts: too many changed SecretSyncs in one window; dropped one', {
          namespace: ns,
          secretSync: name,
        });
        continue;
      }
      batch.changes.set(name, c);
    }
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** The window of a namespace ends: each labelled workload naming a changed SecretSync rolls once. */
  private async fire(ns: string): Promise<void> {
    const batch = this.batches.get(ns);
    if (!batch || this.stopped) return;
    this.batches.delete(ns);
    this.prune(ns);
    let workloads: Workload[];
    try {
      workloads = (await Promise.all(KINDS.map((k) => this.o.api.list(k, ns)))).flat();
    } catch (e) {
      this.o.log.warn('restarts: could not list the workloads that opted in', {
        namespace: ns,
        error: errorMessage(e),
      });
      return this.retry(ns, [...batch.changes.values()], {
        at: this.now() + this.o.debounceMs,
        attempts: batch.attempts,
      });
    }
    const later = new Map<string, Change>();
    let at = Infinity;
    let failed = false;
    for (const w of workloads) {
      const verdict = await this.consider(w, batch.changes);
      if (verdict.kind === 'skipped') this.o.metrics.restartsSkipped.inc({ reason: verdict.reason });
      if (verdict.kind !== 'later') continue;
      for (const n of verdict.names) later.set(n, batch.changes.get(n)!);
      at = Math.min(at, verdict.at);
      failed ||= !!verdict.failed;
    }
    if (later.size) this.retry(ns, [...later.values()], { at, attempts: batch.attempts + (failed ? 1 : 0) });
  }

  private retry(ns: string, changes: Change[], o: { at: number; attempts: number }): void {
    if (o.attempts >= MAX_ATTEMPTS) {
      this.o.metrics.restartsSkipped.inc({ reason: 'failed' });
      this.o.log.error('restarts: gave up rolling out for these changes', {
        namespace: ns,
        secretSyncs: changes.map((c) => c.ss.metadata.name),
      });
      return;
    }
    if (!this.stopped) this.pend(ns, changes, { afterMs: o.at - this.now(), attempts: o.attempts });
  }

  private async consider(w: Workload, changes: Map<string, Change>): Promise<Verdict> {
    const ns = w.metadata.namespace!;
    const named = namedSecretSyncs(w.metadata.annotations);
    if ('skip' in named) return { kind: 'skipped', reason: named.skip };
    const hits = named.names.filter((n) => changes.has(n));
    if (!hits.length) return { kind: 'none' };
    const value = restartValue(
      named.names.map((n) => [n, changes.get(n)?.versions ?? this.o.versionsOf(ns, n) ?? []] as [string, Versions]),
    );
    if (w.template[RESTARTED_FOR_ANNOTATION] === value) return { kind: 'skipped', reason: 'unchanged' };
    const key = `${w.kind}/${w.metadata.name}`;
    const last = this.rolled.get(ns)?.get(key);
    if (last !== undefined && this.now() - last < this.o.minIntervalMs) {
      this.o.metrics.restartsSkipped.inc({ reason: 'rate_limited' });
      return { kind: 'later', at: last + this.o.minIntervalMs, names: hits };
    }
    try {
      await this.o.api.patch(w, value);
    } catch (e) {
      // 409: the workload changed since the list; another look after a moment.
      const conflict = errorCode(e) === 409;
      this.o.log.warn('restarts: could not patch the workload', {
        namespace: ns,
        workload: key,
        error: errorMessage(e),
      });
      if (!conflict) return { kind: 'skipped', reason: 'failed' };
      return { kind: 'later', at: this.now() + 1_000, names: hits, failed: true };
    }
    this.recordRollout(
      w,
      hits.map((n) => [n, changes.get(n)!] as const),
    );
    return { kind: 'rolled' };
  }

  private recordRollout(w: Workload, hits: (readonly [string, Change])[]): void {
    const ns = w.metadata.namespace!;
    const name = w.metadata.name!;
    let mine = this.rolled.get(ns);
    if (!mine) this.rolled.set(ns, (mine = new Map()));
    mine.set(`${w.kind}/${name}`, this.now());
    this.o.metrics.restarts.inc({ namespace: ns, kind: w.kind });
    this.o.log.info('rolled out a workload for changed SecretSyncs', {
      namespace: ns,
      workload: `${w.kind}/${name}`,
      secretSyncs: hits.map(([n]) => n),
    });
    this.o.events.recordOn(
      { apiVersion: 'apps/v1', kind: w.kind, name, namespace: ns, uid: w.metadata.uid ?? '' },
      {
        type: 'Normal',
        reason: 'RolloutRestarted',
        action: 'Restart',
        message: RESTARTS.workload({
          annotation: RESTARTED_FOR_ANNOTATION,
          changes: hits.map(([n, c]) => ({ name: n, versions: [...c.versions] })),
        }),
      },
    );
    for (const [, c] of hits)
      this.o.events.record(
        c.ss,
        'Normal',
        'WorkloadRolledOut',
        RESTARTS.secretSync({ kind: w.kind, name, versions: [...c.versions] }),
      );
  }

  /** Forgets rollouts older than the minimum interval: they no longer hold a workload back. */
  private prune(ns: string): void {
    const mine = this.rolled.get(ns);
    if (!mine) return;
    const now = this.now();
    for (const [k, t] of mine) if (now - t >= this.o.minIntervalMs) mine.delete(k);
    if (!mine.size) this.rolled.delete(ns);
  }

  /** Namespaces with a window open (for tests). */
  get pending(): number {
    return this.batches.size;
  }

  /** Drops the open windows and waits for the rollouts under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const b of this.batches.values()) clearTimeout(b.timer);
    this.batches.clear();
    await Promise.allSettled([...this.running]);
  }
}

/** What a change keeps of its SecretSync: what its Event names. */
function refOf(ss: SecretSync): SecretSync {
  const { name, namespace, uid, resourceVersion } = ss.metadata;
  return {
    metadata: { name, namespace, uid, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: ss.spec,
  };
}
