// The provider's ChangeSource (proto/changes.proto): Key Vault's events, pulled from the storage
// queue an Event Grid subscription delivers them to, turned into change notices for every watcher.
//
// The queue is read only while at least one caller watches. With several replicas, only the
// leading manager acts on notices and watches; a provider whose manager does not lead must leave
// the messages alone, or it would take (and delete) events the leader never hears of. A received
// message is deleted only after its notice went to the watchers, so an event is lost neither to a
// watcher leaving nor to the provider stopping: it shows again after the visibility timeout.
//
// A notice names change keys (change-keys.ts) and never a value; before it goes out, what the
// provider shares of the object's current version is dropped (vault.ts), so the Mount the notice
// causes reads the new version. Whether the queue is being read, and which vaults' events came,
// decide how long reads are shared (event-coverage.ts).
import {
  errorMessage,
  type ChangeListener,
  type ChangeNotice,
  type ChangeSource,
  type ChangeState,
} from '@secret-store-sync/proto';
import { Backoff, sleep } from './backoff.js';
import { parseQueueMessage, type ChangeKind, type Rejection } from './change-events.js';
import { changeKey } from './change-keys.js';
import { RECEIVE_BATCH, queueFailure, type EventQueue, type QueueFailure, type QueueMessage } from './change-queue.js';
import type { EventCoverage } from './event-coverage.js';
import type { Logger } from './log.js';
import { CHANGE_STATE } from './messages.js';
import type { Metrics } from './metrics.js';

/** A burst is collected this long (from its first message) into one notice per kind. */
export const COALESCE_MS = 100;
/** At most this many messages are collected before their notices go out. */
const MAX_COLLECTED = 8 * RECEIVE_BATCH;
/** Event ids remembered against duplicates (Event Grid delivers at least once); the oldest forgotten first. */
const MAX_SEEN_IDS = 10_000;
/** Deletes in flight at once. */
const DELETE_CONCURRENCY = 8;
/** Failed queue reads back off from 1 s to 60 s, jittered. */
export const BACKOFF = { initialMs: 1_000, maxMs: 60_000 };

export interface QueueChangeSourceDeps {
  queue: EventQueue;
  log: Logger;
  metrics: Pick<Metrics, 'changeEventsReceiving' | 'changeWatchers' | 'changeMessages' | 'changeQueueErrors'>;
  /** Told each change key before its notice goes out: drop what is shared of the object's current version. */
  invalidate: (key: string) => void;
  /** Told whether the queue is being read and, after each notice, the vaults whose events it held. */
  coverage: Pick<EventCoverage, 'receiving' | 'eventFrom'>;
  /** Wait between polls of an empty queue. */
  pollIntervalMs: number;
  /** The queue and its reader as messages name them (never a token). */
  names: { queue: string; identity: string };
  coalesceMs?: number;
  backoff?: Backoff;
}

type Result = Rejection | 'notified' | 'duplicate';

/** Messages received in one round, and what they mean. */
class Collected {
  readonly messages: QueueMessage[] = [];
  readonly results = new Map<Result, number>();
  /** Change keys by kind, deduplicated. */
  readonly keys = new Map<ChangeKind, Set<string>>();
  readonly eventIds = new Set<string>();
  /** The vault hosts of valid Key Vault events, duplicates included (they too came by this queue). */
  readonly hosts = new Set<string>();

  take(m: QueueMessage, seen: RecentIds): void {
    this.messages.push(m);
    const parsed = parseQueueMessage(m.text);
    if ('rejected' in parsed) return this.count(parsed.rejected);
    for (const e of parsed.events) this.hosts.add(e.vaultHost);
    const fresh = parsed.events.filter((e) => !seen.has(e.eventId) && !this.eventIds.has(e.eventId));
    if (fresh.length === 0) return this.count('duplicate');
    for (const e of fresh) {
      this.eventIds.add(e.eventId);
      const keys = this.keys.get(e.kind) ?? new Set<string>();
      keys.add(changeKey(e.vaultHost, e.objectName));
      this.keys.set(e.kind, keys);
    }
    this.count('notified');
  }

  private count(r: Result): void {
    this.results.set(r, (this.results.get(r) ?? 0) + 1);
  }
}

export class QueueChangeSource implements ChangeSource {
  private readonly listeners = new Set<ChangeListener>();
  private state: ChangeState = CHANGE_STATE.notWatched();
  private pulling: { controller: AbortController; done: Promise<void> } | undefined;
  private readonly seen = new RecentIds(MAX_SEEN_IDS);
  private readonly backoff: Backoff;
  private readonly coalesceMs: number;
  /** Aborted when the provider stops: deletes under way are given up. */
  private readonly closing = new AbortController();

  constructor(private readonly deps: QueueChangeSourceDeps) {
    this.backoff = deps.backoff ?? new Backoff(BACKOFF);
    this.coalesceMs = deps.coalesceMs ?? COALESCE_MS;
    deps.metrics.changeEventsReceiving.set(0);
    deps.metrics.changeWatchers.set(0);
  }

  current(): ChangeState {
    return this.state;
  }

  watch(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    this.deps.metrics.changeWatchers.set(this.listeners.size);
    if (!this.pulling && !this.closing.signal.aborted) this.start();
    return () => {
      if (!this.listeners.delete(listener)) return;
      this.deps.metrics.changeWatchers.set(this.listeners.size);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Stops reading the queue for good and waits for the round under way to end. */
  async close(): Promise<void> {
    this.closing.abort();
    const pulling = this.pulling;
    this.stop();
    await pulling?.done;
  }

  private start(): void {
    const controller = new AbortController();
    this.pulling = { controller, done: this.run(controller.signal) };
  }

  private stop(): void {
    this.pulling?.controller.abort();
    this.pulling = undefined;
    this.backoff.reset();
    this.setState(CHANGE_STATE.notWatched());
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let wait: number;
      try {
        wait = await this.round(signal);
      } catch (e) {
        // A bug, not the queue: logged, and the loop goes on at the backoff's pace.
        this.deps.log.error('change events: round failed', { error: errorMessage(e) });
        wait = this.backoff.next();
      }
      await sleep(wait, signal);
    }
  }

  /** Receive, notify, delete; returns how long to wait before the next round. */
  private async round(signal: AbortSignal): Promise<number> {
    const collected = new Collected();
    let failure: QueueFailure | undefined;
    try {
      await this.collect(collected, signal);
    } catch (e) {
      if (!signal.aborted) failure = queueFailure(e);
    }
    if (signal.aborted) return 0;
    if (collected.messages.length > 0) await this.flush(collected);
    if (failure) {
      this.deps.metrics.changeQueueErrors.inc({ reason: failure.reason });
      this.setState(CHANGE_STATE.failed({ ...this.deps.names, failure }));
      return this.backoff.next();
    }
    return collected.messages.length > 0 ? 0 : this.deps.pollIntervalMs;
  }

  /**
   * Receives until the queue is empty, the burst has been collected for `coalesceMs` from its
   * first message, or enough messages are waiting; a queue with messages is asked again at once.
   */
  private async collect(collected: Collected, signal: AbortSignal): Promise<void> {
    let first: number | undefined;
    for (;;) {
      const got = await this.deps.queue.receive(signal);
      this.backoff.reset();
      this.setState(CHANGE_STATE.receiving());
      for (const m of got) collected.take(m, this.seen);
      if (got.length === 0 || collected.messages.length >= MAX_COLLECTED) return;
      first ??= Date.now();
      const left = this.coalesceMs - (Date.now() - first);
      if (left <= 0) return;
      if (got.length < RECEIVE_BATCH) await sleep(left, signal);
    }
  }

  /** Notices to every watcher, then the messages deleted; nothing when nobody watches any more. */
  private async flush(collected: Collected): Promise<void> {
    const listeners = [...this.listeners];
    // Left in the queue: they show again after the visibility timeout, for whoever watches then.
    if (listeners.length === 0) return;
    for (const keys of collected.keys.values()) for (const k of keys) this.deps.invalidate(k);
    for (const [kind, keys] of collected.keys) {
      const notice: ChangeNotice = { keys: [...keys], kind };
      for (const l of listeners) l.changed(notice);
    }
    for (const host of collected.hosts) this.deps.coverage.eventFrom(host);
    for (const id of collected.eventIds) this.seen.add(id);
    for (const [result, n] of collected.results) this.deps.metrics.changeMessages.inc({ result }, n);
    this.deps.log.info('change events', {
      messages: collected.messages.length,
      ...Object.fromEntries(collected.results),
      keys: Object.fromEntries([...collected.keys].map(([kind, keys]) => [kind, keys.size])),
    });
    await this.deleteAll(collected.messages);
  }

  /** Deletes, a few at a time. A delete that fails leaves a message that shows again and is then a duplicate. */
  private async deleteAll(messages: QueueMessage[]): Promise<void> {
    const queue = [...messages];
    let failed = 0;
    const worker = async () => {
      for (let m = queue.shift(); m && !this.closing.signal.aborted; m = queue.shift()) {
        await this.deps.queue.delete(m, this.closing.signal).catch(() => failed++);
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, queue.length) }, worker));
    if (failed > 0) this.deps.log.warn('change queue: messages not deleted; they will show again', { failed });
  }

  private setState(next: ChangeState): void {
    const was = this.state;
    if (was.receiving === next.receiving && was.reason === next.reason && was.message === next.message) return;
    this.state = next;
    this.deps.coverage.receiving(next.receiving);
    this.deps.metrics.changeEventsReceiving.set(next.receiving ? 1 : 0);
    const fields = {
      queue: this.deps.names.queue,
      receiving: next.receiving,
      reason: next.reason,
      message: next.message,
    };
    if (next.receiving || next.reason === 'NotWatched') this.deps.log.info('change events state', fields);
    else this.deps.log.warn('change events state', fields);
    for (const l of this.listeners) l.state(next);
  }
}

/** When no queue is configured: the state says so, and nothing is ever noticed. */
export const NOT_CONFIGURED: ChangeSource = {
  current: () => CHANGE_STATE.notConfigured(),
  watch: () => () => {},
};

/** The most recent ids, at most `max`, the oldest forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>(); // insertion order = oldest first

  constructor(private readonly max: number) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.delete(id);
    this.ids.add(id);
    for (const old of this.ids) {
      if (this.ids.size <= this.max) break;
      this.ids.delete(old);
    }
  }
}
