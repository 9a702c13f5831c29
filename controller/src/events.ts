// Events on the SecretSync, so `kubectl describe secretsync` tells the story. Core (v1) Events,
// as most controllers write them: the RBAC the upstream sync controller's chart grants (core
// `events` create/patch) is enough, and `kubectl describe` shows them like events.k8s.io ones.
//
// Repeats are aggregated as client-go's EventCorrelator does: an Event with the same object, type,
// reason, message and source as one recently written PATCHes that Event's count and lastTimestamp
// instead of creating another, so a SecretSync failing every retry shows one line "(x12 over 3m)".
// The correlation cache is an LRU bounded in total and per namespace (one namespace's churn cannot
// evict another's entries or grow the manager's memory); forgetting an entry only costs a new Event.
import { errorCode, errorMessage } from '@secret-store-sync/proto';
import type { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { SecretSync } from './api.js';
import { SYNC_GROUP, SYNC_VERSION } from './api.js';
import type { Logger } from './log.js';
import type { Text } from './messages.js';
import { MERGE_PATCH } from './status.js';

const REPORTING_CONTROLLER = 'secret-store-sync.x-k8s.io/manager';

/**
 * Bounds on Events in flight. Events are not awaited by the sync, so without a bound a burst against
 * a slow apiserver would hold thousands of requests (and sockets) for up to the call deadline. As
 * client-go's broadcaster does with its full channel, Events beyond the queue are dropped: the
 * status still says what happened, and secretsync_events_dropped_total counts what was lost.
 * `cached`/`cachedPerNamespace`: the correlation cache (client-go keeps 4096 entries).
 */
export interface EventLimits {
  inFlight: number;
  queued: number;
  cached: number;
  cachedPerNamespace: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = { inFlight: 8, queued: 1_000, cached: 4_096, cachedPerNamespace: 512 };

type EventBody = Parameters<CoreV1Api['createNamespacedEvent']>[0]['body'];

/** One written (or to be written) Event and the occurrences it stands for. */
interface Series {
  key: string;
  namespace: string;
  body: EventBody;
  count: number;
  lastTimestamp: Date;
  /** The apiserver has it (a later occurrence patches it). */
  created: boolean;
  /** Queued or in flight: a repeat meanwhile only bumps the count, written when that call ends. */
  busy: boolean;
  dirty: boolean;
}

export interface EventRecorderOptions {
  /** reportingInstance: this manager's pod. */
  instance: string;
  log: Logger;
  /** Told of each Event dropped (secretsync_events_dropped_total). */
  onDropped?: () => void;
  limits?: Partial<EventLimits>;
  now?: () => Date;
}

export class EventRecorder {
  private inFlight = 0;
  /** Waiting to be sent, oldest first. */
  private readonly waiting: Series[] = [];
  private dropping = false;
  private readonly cache: CorrelationCache;
  private readonly limits: EventLimits;

  constructor(
    private readonly core: CoreV1Api,
    private readonly o: EventRecorderOptions,
  ) {
    this.limits = { ...DEFAULT_EVENT_LIMITS, ...o.limits };
    this.cache = new CorrelationCache({ total: this.limits.cached, perNamespace: this.limits.cachedPerNamespace });
  }

  /** Entries in the correlation cache (for tests and the bench). */
  get cached(): number {
    return this.cache.size;
  }

  /** Fire and forget: an Event that cannot be written must not fail the sync. */
  record(ss: SecretSync, type: 'Normal' | 'Warning', reason: string, message: Text): void {
    this.recordOn(secretSyncRef(ss), { type, reason, message });
  }

  /** An Event on any object of the namespace (a workload a restart rolled: restarts.ts). */
  recordOn(
    ref: InvolvedObject,
    e: { type: 'Normal' | 'Warning'; reason: string; message: Text; action?: string },
  ): void {
    const { type, reason } = e;
    const now = this.o.now?.() ?? new Date();
    const text = e.message.slice(0, 1024);
    const key = JSON.stringify([ref.namespace, ref.kind, ref.name, ref.uid, type, reason, text]);
    const seen = this.cache.get(key);
    if (seen) {
      seen.count++;
      seen.lastTimestamp = now;
      if (seen.busy) seen.dirty = true;
      else this.enqueue(seen);
      return;
    }
    const series: Series = {
      key,
      namespace: ref.namespace,
      body: eventBody({ ref, type, reason, message: text, instance: this.o.instance, now, action: e.action ?? 'Sync' }),
      count: 1,
      lastTimestamp: now,
      created: false,
      busy: false,
      dirty: false,
    };
    this.cache.set(series);
    this.enqueue(series);
  }

  private enqueue(series: Series): void {
    if (this.inFlight < this.limits.inFlight && this.waiting.length === 0) return this.send(series);
    if (this.waiting.length < this.limits.queued) {
      series.busy = true;
      this.waiting.push(series);
      return;
    }
    // Not written: the cached count stays ahead, and the next write of this series carries it.
    this.o.onDropped?.();
    if (!this.dropping) {
      this.dropping = true; // one line per episode, not one per Event
      this.o.log.warn('dropping Events: the apiserver is not keeping up with them', {
        inFlight: this.inFlight,
        queued: this.waiting.length,
        secretSync: `${series.namespace}/${series.body.involvedObject.name}`,
        reason: series.body.reason,
      });
    }
  }

  private send(series: Series): void {
    this.inFlight++;
    series.busy = true;
    // Through a promise, so that even a synchronous throw ends here and frees the slot.
    Promise.resolve()
      .then(() => this.write(series))
      .catch((e: unknown) => {
        this.o.log.warn('could not record event', {
          secretSync: `${series.namespace}/${series.body.involvedObject.name}`,
          reason: series.body.reason,
          error: errorMessage(e),
        });
      })
      .finally(() => {
        this.inFlight--;
        series.busy = false;
        // Repeats while it was written: one more write, behind those already waiting.
        if (series.dirty) this.enqueue(series);
        const next = this.waiting.shift();
        if (next) this.send(next);
        else this.dropping = false;
      });
  }

  /** Creates the Event, or patches its count; one deleted meanwhile (its TTL passed) is created anew. */
  private async write(series: Series): Promise<void> {
    const { count, lastTimestamp } = series;
    series.dirty = false;
    if (series.created) {
      try {
        await this.core.patchNamespacedEvent(
          { name: series.body.metadata!.name!, namespace: series.namespace, body: { count, lastTimestamp } },
          MERGE_PATCH,
        );
        return;
      } catch (e) {
        if (errorCode(e) !== 404) throw e;
        series.created = false;
        series.body = { ...series.body, metadata: { ...series.body.metadata, name: eventName(series.body) } };
      }
    }
    try {
      await this.core.createNamespacedEvent({
        namespace: series.namespace,
        body: { ...series.body, count, lastTimestamp },
      });
    } catch (e) {
      // 409: an earlier create that timed out did land; later occurrences patch it.
      if (errorCode(e) !== 409) throw e;
    }
    series.created = true;
  }
}

/**
 * An LRU of Event series by correlation key, at most `total` entries and `perNamespace` of one
 * namespace: a namespace at its share evicts its own oldest entry, not another namespace's.
 */
export class CorrelationCache {
  /** All entries, least recently used first. */
  private readonly all = new Map<string, Series>();
  /** Per namespace, its entries' keys, least recently used first. */
  private readonly byNamespace = new Map<string, Set<string>>();

  constructor(private readonly bounds: { total: number; perNamespace: number }) {}

  get size(): number {
    return this.all.size;
  }

  get(key: string): Series | undefined {
    const s = this.all.get(key);
    if (s) this.touch(s);
    return s;
  }

  set(s: Series): void {
    const mine = this.byNamespace.get(s.namespace);
    if (mine && mine.size >= this.bounds.perNamespace) this.evict(mine.values().next().value!);
    else if (this.all.size >= this.bounds.total) this.evict(this.all.keys().next().value!);
    this.all.set(s.key, s);
    const keys = this.byNamespace.get(s.namespace);
    if (keys) keys.add(s.key);
    else this.byNamespace.set(s.namespace, new Set([s.key]));
  }

  private touch(s: Series): void {
    this.all.delete(s.key);
    this.all.set(s.key, s);
    const mine = this.byNamespace.get(s.namespace)!;
    mine.delete(s.key);
    mine.add(s.key);
  }

  private evict(key: string): void {
    const s = this.all.get(key)!;
    this.all.delete(key);
    const mine = this.byNamespace.get(s.namespace)!;
    mine.delete(key);
    if (mine.size === 0) this.byNamespace.delete(s.namespace);
  }
}

/** client-go's naming: <object>.<unique hex>; a generateName ending in '.' is not valid. */
function eventName(body: EventBody): string {
  return `${body.involvedObject.name!.slice(0, 200)}.${Date.now().toString(16)}${randomBytes(4).toString('hex')}`;
}

/** The object an Event is about. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid: string;
  resourceVersion?: string;
}

const secretSyncRef = (ss: SecretSync): InvolvedObject => ({
  apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`,
  kind: 'SecretSync',
  name: ss.metadata.name,
  namespace: ss.metadata.namespace,
  uid: ss.metadata.uid,
  ...(ss.metadata.resourceVersion ? { resourceVersion: ss.metadata.resourceVersion } : {}),
});

function eventBody(o: {
  ref: InvolvedObject;
  type: string;
  reason: string;
  message: string;
  instance: string;
  now: Date;
  action: string;
}): EventBody {
  const { ref, now } = o;
  const body: EventBody = {
    metadata: { namespace: ref.namespace },
    involvedObject: { ...ref },
    reason: o.reason,
    message: o.message,
    type: o.type,
    source: { component: REPORTING_CONTROLLER },
    reportingComponent: REPORTING_CONTROLLER,
    reportingInstance: o.instance,
    action: o.action,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  body.metadata!.name = eventName(body);
  return body;
}
