// Turns an outcome into the SecretSync's status — conditions whose reasons are the guide's status
// types, the keyed hash, versions and times — written in one merge patch, plus an Event.
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import { rfc3339 } from '@secret-store-sync/proto';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type Condition, type SecretSync } from './api.js';
import type { EventRecorder } from './events.js';
import { EXPIRY, failedCondition, succeededCondition, syncedEvent, type Text } from './messages.js';
import { REASONS, type FailureKind, type Reason, type Upstream } from './reasons.js';

export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export type Outcome =
  | {
      ok: true;
      reason: Extract<
        Reason,
        'CreateSucceeded' | 'UpdateNoValueChangeSucceeded' | 'UpdateValueChangeOrForceUpdateSucceeded'
      >;
      hash: string;
      versions: { id: string; version: string }[];
      wrote: boolean;
      /** Expiry by object id, from the provider's optional trailer; undefined when it sent none. */
      expiresOn?: Record<string, Date>;
      /** Change keys by object id, from the provider's optional trailer (change-index.ts). */
      changeKeys?: Record<string, string>;
    }
  | {
      ok: false;
      reason: Reason;
      kind: FailureKind;
      message: string;
      advice: string;
      /** For the log line, not the status: what failed upstream, and what did not answer in time. */
      upstream?: Upstream;
      timedOut?: string;
    };

/** The condition that warns before synced objects expire; it never touches Ready. */
export const EXPIRING = 'Expiring';

/**
 * The expiry part of a successful status: per-object and earliest expiry, and the Expiring
 * condition — True (ObjectExpiring) within the warning window, True (ObjectExpired) once past,
 * False otherwise. A provider that reports no expiry leaves none of it (and clears what an earlier
 * answer left). An expired object is a warning: the Secret keeps serving the last values.
 */
function expiryStatus(
  outcome: Extract<Outcome, { ok: true }>,
  conditions: Condition[],
  { generation, now, warnMs }: { generation: number; now: Date; warnMs: number },
) {
  const exp = outcome.expiresOn;
  const keys = outcome.changeKeys ?? {};
  const syncedObjectVersions = outcome.versions.map((v) => ({
    ...v,
    ...(exp?.[v.id] ? { expiresOn: rfc3339(exp[v.id]!) } : {}),
    ...(keys[v.id] ? { changeKey: keys[v.id] } : {}),
  }));
  if (!exp)
    return {
      syncedObjectVersions,
      expiresOn: null,
      conditions: conditions.filter((c) => c.type !== EXPIRING),
    };
  const dated = Object.entries(exp).sort((a, b) => a[1].getTime() - b[1].getTime());
  return {
    syncedObjectVersions,
    expiresOn: dated.length ? rfc3339(dated[0]![1]) : null,
    conditions: setCondition(
      conditions,
      { type: EXPIRING, ...expiringCondition(dated, now, warnMs), observedGeneration: generation },
      rfc3339(now),
    ),
  };
}

/** The Expiring condition's status, reason and message for objects sorted by expiry. */
function expiringCondition(
  dated: [string, Date][],
  now: Date,
  warnMs: number,
): Pick<Condition, 'status' | 'reason'> & { message: Text } {
  const expired = dated.filter(([, d]) => d.getTime() <= now.getTime());
  const soon = dated.filter(([, d]) => d.getTime() > now.getTime() && d.getTime() - now.getTime() <= warnMs);
  const condition = expired.length
    ? {
        status: 'True' as const,
        reason: 'ObjectExpired',
        message: EXPIRY.expired({ objects: expired }),
      }
    : soon.length
      ? {
          status: 'True' as const,
          reason: 'ObjectExpiring',
          message: EXPIRY.expiring({ objects: soon, warnMs }),
        }
      : {
          status: 'False' as const,
          reason: 'NoObjectExpiring',
          message: EXPIRY.none({ objects: dated, warnMs }),
        };
  return condition;
}

/** The change keys the last successful sync stored (change-index.ts `restore`). */
export function storedChangeKeys(ss: SecretSync): string[] {
  return (ss.status?.syncedObjectVersions ?? []).flatMap((v) => (typeof v.changeKey === 'string' ? [v.changeKey] : []));
}

/** The expiry times the last successful sync stored, by object id. */
export function storedExpiry(ss: SecretSync): Record<string, Date> {
  return Object.fromEntries(
    (ss.status?.syncedObjectVersions ?? []).flatMap((v) => (v.expiresOn ? [[v.id, new Date(v.expiresOn)]] : [])),
  );
}

/**
 * An expiry check between syncs: the conditions with the Expiring condition recomputed from the
 * stored expiry times — no provider call — or undefined when it would not change (or the last
 * sync stored no expiry, so there is no condition to move).
 */
export function recheckedExpiry(ss: SecretSync, now: Date, warnMs: number): Condition[] | undefined {
  const conditions = ss.status?.conditions ?? [];
  const prev = conditions.find((c) => c.type === EXPIRING);
  const dated = Object.entries(storedExpiry(ss)).sort((a, b) => a[1].getTime() - b[1].getTime());
  if (!prev || !dated.length) return undefined;
  const next = expiringCondition(dated, now, warnMs);
  if (next.status === prev.status && next.reason === prev.reason && next.message === prev.message) return undefined;
  return setCondition(
    conditions,
    { type: EXPIRING, ...next, observedGeneration: prev.observedGeneration ?? ss.metadata.generation ?? 0 },
    rfc3339(now),
  );
}

/** Sets a condition, keeping lastTransitionTime when its status did not change; its message is from the catalog. */
function setCondition(
  list: Condition[],
  c: Omit<Condition, 'lastTransitionTime' | 'message'> & { message: Text },
  now: string,
): Condition[] {
  const prev = list.find((x) => x.type === c.type);
  const next: Condition = {
    ...c,
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now,
  };
  return [...list.filter((x) => x.type !== c.type), next];
}

export function nextStatus(
  ss: SecretSync,
  outcome: Outcome,
  now = new Date(),
  expiryWarningMs = 30 * 86_400_000,
): NonNullable<SecretSync['status']> {
  const t = rfc3339(now);
  const generation = ss.metadata.generation ?? 0;
  let conditions = ss.status?.conditions ?? [];
  const created = !!ss.status?.syncHash;
  if (outcome.ok) {
    const message = succeededCondition(outcome.reason);
    if (outcome.reason === 'CreateSucceeded') {
      conditions = setCondition(
        conditions,
        { type: 'SecretCreated', status: 'True', reason: 'CreateSucceeded', message, observedGeneration: generation },
        t,
      );
    } else {
      // A later success clears an earlier failure of either kind.
      if (!conditions.some((c) => c.type === 'SecretCreated' && c.status === 'True')) {
        conditions = setCondition(
          conditions,
          {
            type: 'SecretCreated',
            status: 'True',
            reason: 'CreateSucceeded',
            message: succeededCondition('CreateSucceeded'),
            observedGeneration: generation,
          },
          t,
        );
      }
      conditions = setCondition(
        conditions,
        { type: 'SecretUpdated', status: 'True', reason: outcome.reason, message, observedGeneration: generation },
        t,
      );
    }
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'True', reason: outcome.reason, message, observedGeneration: generation },
      t,
    );
    return {
      ...ss.status,
      syncHash: outcome.hash,
      lastSuccessfulSyncTime: t,
      observedGeneration: generation,
      ...expiryStatus(outcome, conditions, { generation, now, warnMs: expiryWarningMs }),
    };
  }
  const message = failedCondition(outcome);
  const type = created ? 'SecretUpdated' : 'SecretCreated';
  conditions = setCondition(
    conditions,
    { type, status: 'False', reason: outcome.reason, message, observedGeneration: generation },
    t,
  );
  conditions = setCondition(
    conditions,
    { type: 'Ready', status: 'False', reason: outcome.reason, message, observedGeneration: generation },
    t,
  );
  return { ...ss.status, observedGeneration: generation, conditions };
}

/**
 * SecretSyncs by their Ready condition's reason, for the secretsync_status gauge. The status is
 * read from the cache, where anyone allowed to write status could have put any string: a reason
 * the manager does not write counts as Other, so the label's values stay the guide's 13 and two.
 */
export function countByReadyReason(secretSyncs: Iterable<SecretSync>, controllerName: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const ss of secretSyncs) {
    if ((ss.spec?.secretSyncControllerName ?? '') !== controllerName) continue;
    const reason = ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
    const label = reason === undefined ? 'None' : Object.hasOwn(REASONS, reason) ? reason : 'Other';
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return counts;
}

export class StatusReporter {
  constructor(
    private readonly custom: CustomObjectsApi,
    private readonly events: EventRecorder,
    private readonly expiryWarningMs: number,
  ) {}

  async report(ss: SecretSync, outcome: Outcome): Promise<void> {
    const status = nextStatus(ss, outcome, new Date(), this.expiryWarningMs);
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: SYNC_GROUP,
        version: SYNC_VERSION,
        namespace: ss.metadata.namespace,
        plural: SYNC_PLURAL,
        name: ss.metadata.name,
        body: { status },
      },
      MERGE_PATCH,
    );
    this.expiryEvent(ss, status.conditions ?? []);
    // A no-change check repeating the last outcome is not news: its trace is lastSuccessfulSyncTime.
    // (An Event every interval for every SecretSync would double the apiserver writes of a pass.)
    const previous = ss.status?.conditions?.find((c) => c.type === 'Ready');
    if (
      outcome.reason === 'UpdateNoValueChangeSucceeded' &&
      previous?.status === 'True' &&
      previous.reason === outcome.reason
    )
      return;
    const note = outcome.ok
      ? syncedEvent({ reason: outcome.reason, versions: outcome.versions })
      : failedCondition(outcome);
    this.events.record(ss, outcome.ok ? 'Normal' : 'Warning', outcome.reason, note);
  }

  /** An expiry check (expiry-checks.ts): writes the Expiring condition only when it changed; true when it did. */
  async reportExpiry(ss: SecretSync, now = new Date()): Promise<boolean> {
    const conditions = recheckedExpiry(ss, now, this.expiryWarningMs);
    if (!conditions) return false;
    await this.custom.patchNamespacedCustomObjectStatus(
      // The conditions are computed from the cached object: its resourceVersion makes the write
      // fail (409) rather than put back conditions a newer write changed.
      {
        group: SYNC_GROUP,
        version: SYNC_VERSION,
        namespace: ss.metadata.namespace,
        plural: SYNC_PLURAL,
        name: ss.metadata.name,
        body: { metadata: { resourceVersion: ss.metadata.resourceVersion }, status: { conditions } },
      },
      MERGE_PATCH,
    );
    this.expiryEvent(ss, conditions);
    return true;
  }

  /** Entering the warning window and expiring are news once each, not at every rotation. */
  private expiryEvent(ss: SecretSync, conditions: Condition[]): void {
    const wasExpiring = ss.status?.conditions?.find((c) => c.type === EXPIRING);
    const expiring = conditions.find((c) => c.type === EXPIRING);
    if (expiring?.status === 'True' && !(wasExpiring?.status === 'True' && wasExpiring.reason === expiring.reason)) {
      this.events.record(ss, 'Warning', expiring.reason, EXPIRY.event(expiring));
    }
  }
}
