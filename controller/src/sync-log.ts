// The manager's one log line per sync: which SecretSync, the status reason and how long it took;
// for a success the versions synced, for a failure the message and — as fields, so nothing parses
// the message — what failed upstream and what did not answer in time. Never a value or a token:
// the outcome holds neither.
import type { Logger } from './log.js';
import type { Outcome } from './status.js';

export function logOutcome(log: Logger, o: { secretSync: string; outcome: Outcome; durationMs: number }): void {
  const { outcome } = o;
  const fields = { secretSync: o.secretSync, reason: outcome.reason, durationMs: o.durationMs };
  if (!outcome.ok) {
    log.warn('sync failed', {
      ...fields,
      error: outcome.message,
      ...(outcome.upstream ? { upstream: outcome.upstream } : {}),
      ...(outcome.timedOut ? { timedOut: outcome.timedOut } : {}),
    });
    return;
  }
  // A rotation that found nothing new is routine: debug, like the Event rule in status.ts.
  const level = outcome.reason === 'UpdateNoValueChangeSucceeded' ? 'debug' : 'info';
  log[level]('synced', { ...fields, versions: outcome.versions, wrote: outcome.wrote });
}
