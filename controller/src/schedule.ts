// The manager's retry and reschedule policy, in one place: what a reconcile, an expiry check or an
// informer event says should happen next (`Next`, data) becomes queue calls in one switch — the
// shape of controller-runtime's reconcileHandler. Nothing here asks which lane an item came
// through: a rotation is a property of the queued item (`rotation`).
import type { Lane } from './queue.js';
import type { Retry } from './reasons.js';

export type Next =
  /** Nothing to schedule: gone, not ours, being deleted, not leading, or an event that changed nothing. */
  | { kind: 'nothing' }
  /** Created or edited (or its class was): sync at once, ahead of rotations. */
  | { kind: 'syncNow' }
  /** Synced: failures are forgiven; the rotation is one interval from now, or an expiry check sooner. */
  | { kind: 'synced'; expiresOn?: Record<string, Date> }
  /** Up to date without a sync (an expiry check ran, or the manager started): the rotation keeps its time. */
  | { kind: 'rotate'; lastSyncAt: number; expiresOn?: Record<string, Date> }
  /** The expiry check's write met a newer status than the cache's: check again once the cache caught up. */
  | { kind: 'recheck'; afterMs: number }
  /** The sync failed and its failure is in the status: retry with backoff. */
  | { kind: 'backoff'; retry: Retry }
  /** The status write failed: sync again soon, in the fast lane, with backoff. */
  | { kind: 'statusWriteFailed' };

export const NOTHING: Next = { kind: 'nothing' };

/** What the policy calls, and what it needs to know besides `Next`. */
export interface Scheduling {
  queue: {
    add(key: string, lane: Lane, rotation?: boolean): void;
    addAfter(key: string, delayMs: number, lane: Lane, rotation?: boolean): void;
  };
  /** Per key: `next` counts a failure and answers its delay, `reset` forgets the failures (queue.ts). */
  backoff: { next(key: string, baseMs?: number): number; reset(key: string): void };
  /** The rotation interval; 0: no rotations (expiry checks still run). */
  intervalMs: number;
  /** Milliseconds until the key's next expiry check for these expiry times, if one is due (expiry-checks.ts). */
  expiryCheckMs(key: string, expiresOn: Record<string, Date> | undefined): number | undefined;
  now(): number;
  random(): number;
}

/** Turns what should happen next to `key` into queue calls. */
export function schedule(key: string, next: Next, s: Scheduling): void {
  switch (next.kind) {
    case 'nothing':
      return;
    case 'syncNow':
      return s.queue.add(key, 'fast');
    case 'synced':
      s.backoff.reset(key);
      return rotateOrCheck(key, s.intervalMs, next.expiresOn, s);
    case 'rotate':
      // A sync time in the future (a manager whose clock ran ahead) counts as now: the next check
      // is at most one interval away, whatever clocks did.
      return rotateOrCheck(
        key,
        Math.max(0, Math.min(s.now(), next.lastSyncAt) + s.intervalMs - s.now()),
        next.expiresOn,
        s,
      );
    case 'recheck':
      return s.queue.addAfter(key, next.afterMs, 'slow', true);
    case 'backoff':
      // Both kinds back off; what needs a change starts slower (5 s, then 10 s, …).
      return s.queue.addAfter(key, s.backoff.next(key, next.retry === 'slow' ? 5_000 : 1_000), 'slow');
    case 'statusWriteFailed':
      return s.queue.addAfter(key, s.backoff.next(key), 'fast');
  }
}

/**
 * The rotation `untilMs` from now (±10 % jitter spreads rotations created together over time
 * instead of in one burst) — or, when an object enters the warning window or expires before it, an
 * expiry check (no Mount) then, so the Expiring condition and its Event are not a rotation interval
 * late. With rotation off, expiry checks still run.
 */
function rotateOrCheck(key: string, untilMs: number, expiresOn: Record<string, Date> | undefined, s: Scheduling) {
  const rotation = s.intervalMs > 0 ? Math.round(untilMs * (0.9 + s.random() * 0.2)) : Infinity;
  const check = s.expiryCheckMs(key, expiresOn);
  const delay = check !== undefined && check < rotation ? check : rotation;
  if (delay !== Infinity) s.queue.addAfter(key, delay, 'slow', true);
}
