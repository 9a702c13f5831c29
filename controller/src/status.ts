// Turns an outcome into the SecretSync's status — conditions whose reasons are the guide's status
// types, the keyed hash, versions and times — written in one merge patch, plus an Event.
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import { rfc3339 } from '@secret-store-sync/proto';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type Condition, type SecretSync } from './api.js';
import type { EventRecorder } from './events.js';
import { REASONS, type FailureKind, type Reason } from './reasons.js';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export type Outcome =
  | { ok: true; reason: Extract<Reason, 'CreateSucceeded' | 'UpdateNoValueChangeSucceeded' | 'UpdateValueChangeOrForceUpdateSucceeded'>; hash: string; versions: { id: string; version: string }[]; wrote: boolean }
  | { ok: false; reason: Reason; kind: FailureKind; message: string; advice: string };

/** Sets a condition, keeping lastTransitionTime when its status did not change. */
function setCondition(list: Condition[], c: Omit<Condition, 'lastTransitionTime'>, now: string): Condition[] {
  const prev = list.find((x) => x.type === c.type);
  const next: Condition = { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now };
  return [...list.filter((x) => x.type !== c.type), next];
}

export function nextStatus(ss: SecretSync, outcome: Outcome, now = new Date()): NonNullable<SecretSync['status']> {
  const t = rfc3339(now);
  const generation = ss.metadata.generation ?? 0;
  let conditions = ss.status?.conditions ?? [];
  const created = !!ss.status?.syncHash;
  if (outcome.ok) {
    const message = REASONS[outcome.reason];
    if (outcome.reason === 'CreateSucceeded') {
      conditions = setCondition(conditions, { type: 'SecretCreated', status: 'True', reason: 'CreateSucceeded', message, observedGeneration: generation }, t);
    } else {
      // A later success clears an earlier failure of either kind.
      if (!conditions.some((c) => c.type === 'SecretCreated' && c.status === 'True')) {
        conditions = setCondition(conditions, { type: 'SecretCreated', status: 'True', reason: 'CreateSucceeded', message: REASONS.CreateSucceeded, observedGeneration: generation }, t);
      }
      conditions = setCondition(conditions, { type: 'SecretUpdated', status: 'True', reason: outcome.reason, message, observedGeneration: generation }, t);
    }
    conditions = setCondition(conditions, { type: 'Ready', status: 'True', reason: outcome.reason, message, observedGeneration: generation }, t);
    return {
      ...ss.status,
      syncHash: outcome.hash,
      lastSuccessfulSyncTime: t,
      observedGeneration: generation,
      syncedObjectVersions: outcome.versions,
      conditions,
    };
  }
  // Providers' own messages often end in a period already: one, not two.
  const message = `${outcome.message.replace(/[.\s]+$/, '')}. ${outcome.advice}`;
  const type = created ? 'SecretUpdated' : 'SecretCreated';
  conditions = setCondition(conditions, { type, status: 'False', reason: outcome.reason, message, observedGeneration: generation }, t);
  conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: outcome.reason, message, observedGeneration: generation }, t);
  return { ...ss.status, observedGeneration: generation, conditions };
}

export class StatusReporter {
  constructor(
    private readonly custom: CustomObjectsApi,
    private readonly events: EventRecorder,
  ) {}

  async report(ss: SecretSync, outcome: Outcome): Promise<void> {
    const status = nextStatus(ss, outcome);
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: SYNC_GROUP, version: SYNC_VERSION, namespace: ss.metadata.namespace, plural: SYNC_PLURAL, name: ss.metadata.name, body: { status } },
      MERGE_PATCH,
    );
    // A no-change check repeating the last outcome is not news: its trace is lastSuccessfulSyncTime.
    // (An Event every interval for every SecretSync would double the apiserver writes of a pass.)
    const previous = ss.status?.conditions?.find((c) => c.type === 'Ready');
    if (outcome.reason === 'UpdateNoValueChangeSucceeded' && previous?.status === 'True' && previous.reason === outcome.reason) return;
    const note = outcome.ok
      ? `${REASONS[outcome.reason]} Versions: ${outcome.versions.map((v) => `${v.id}=${v.version}`).join(', ') || 'none'}`
      : status.conditions!.find((c) => c.type === 'Ready')!.message;
    this.events.record(ss, outcome.ok ? 'Normal' : 'Warning', outcome.reason, note);
  }
}
