// One SecretSync, top-down: observe (the SecretSync, its SecretProviderClass, the provider's files)
// → decide (has anything the Secret should hold changed?) → apply (write it, ownership-checked;
// unchanged, re-assert its data so a hand-made change is repaired)
// → report (status, event, metrics). Every failure is a SyncError that carries its status type.
import { errorMessage, errorStack, type MountRequestInput } from '@secret-store-sync/proto';
import type { Config } from './config.js';
import { RESERVED_PREFIX, type SecretProviderClass, type SecretSync } from './api.js';
import type { Hasher } from './hash.js';
import type { Logger } from './log.js';
import { mapFiles } from './mapping.js';
import type { MountAnswer, Providers } from './provider.js';
import { FRESH, type Share, type SharedMounts } from './shared-mounts.js';
import { adviceFor, FAILURES } from './messages.js';
import { failureReason, SyncError, type Missing } from './reasons.js';
import type { Next } from './schedule.js';
import type { DesiredSecret, SecretWriter } from './secret-writer.js';
import type { Outcome } from './status.js';
import type { TokenCache } from './tokens.js';

export interface ReconcileDeps {
  cfg: Config;
  /** The class, or undefined when it does not exist (not merely missing from a cache that may be behind). */
  spc(namespace: string, name: string): Promise<SecretProviderClass | undefined>;
  tokens: TokenCache;
  providers: Providers;
  mounts: SharedMounts;
  hasher: Hasher;
  writer: SecretWriter;
  log: Logger;
  /** Remembers the change keys of a successful Mount (change-index.ts); answers them by object id. */
  changes: { remember(secretSync: string, provider: string, answer: MountAnswer): Record<string, string> };
}

/**
 * The outcome for the status, and what should happen next (schedule.ts); `missing` what a failure
 * waits for to appear. `share`: which shared provider result the run may take (a rotation's, or one
 * started after the change notice that caused it; shared-mounts.ts).
 */
export async function reconcile(
  ss: SecretSync,
  deps: ReconcileDeps,
  share: Share = FRESH,
): Promise<{ outcome: Outcome; next: Next; missing?: Missing }> {
  const phase = ss.status?.syncHash ? 'update' : 'create';
  try {
    const outcome = await sync(ss, phase, share, deps);
    return { outcome, next: { kind: 'synced', expiresOn: outcome.expiresOn } };
  } catch (e) {
    const err =
      e instanceof SyncError ? e : new SyncError(FAILURES.unexpected({ detail: errorMessage(e) }), { cause: e });
    if (!(e instanceof SyncError))
      deps.log.error('unexpected reconcile error', {
        secretSync: `${ss.metadata.namespace}/${ss.metadata.name}`,
        error: errorStack(e),
      });
    return {
      outcome: {
        ok: false,
        kind: err.kind,
        reason: failureReason(err.kind, phase),
        message: err.message,
        advice: adviceFor(err),
        ...(err.upstream ? { upstream: err.upstream } : {}),
        ...(err.timedOut ? { timedOut: err.timedOut } : {}),
      },
      next: { kind: 'backoff', retry: err.retry },
      ...(err.missing ? { missing: err.missing } : {}),
    };
  }
}

async function sync(
  ss: SecretSync,
  phase: 'create' | 'update',
  share: Share,
  deps: ReconcileDeps,
): Promise<Extract<Outcome, { ok: true }>> {
  // Observe.
  validateSecretSync(ss, deps.cfg);
  const spc = await secretProviderClass(ss, deps);
  const provider = spc.spec!.provider!;
  // What the CSI driver would send for a pod of this namespace running as the ServiceAccount.
  const request: MountRequestInput = {
    parameters: spc.spec!.parameters!,
    pod: { name: deps.cfg.podName, uid: deps.cfg.podUid, namespace: ss.metadata.namespace },
    serviceAccountName: ss.spec.serviceAccountName,
    // Only the audiences configured for this provider: another's token would let it act as the workload there.
    tokens: await deps.tokens.tokensFor(
      ss.metadata.namespace,
      ss.spec.serviceAccountName,
      deps.cfg.providerTokenAudiences.get(provider) ?? [],
    ),
    currentObjectVersions: ss.status?.syncedObjectVersions ?? [],
  };
  // A synced SecretSync asked afresh — its spec or class edited (forceSynchronization too), a
  // retry — reads the store now: a provider's shared reads are for bursts (new SecretSyncs,
  // rotations, a change notice's), and a disabled version comes with no notice.
  const fresh = share.kind === 'fresh' && phase === 'update';
  const { response } = await deps.mounts.mount({ provider, request, fresh }, share, (input) =>
    deps.providers.mount(input),
  );
  // Kept in the status too: a restarted manager or a new leader then knows them without a Mount.
  const changeKeys = deps.changes.remember(`${ss.metadata.namespace}/${ss.metadata.name}`, provider, response);
  const desired: DesiredSecret = {
    type: ss.spec.secretObject.type || 'Opaque',
    data: mapFiles(ss, response.files),
    labels: ss.spec.secretObject.labels ?? {},
    annotations: ss.spec.secretObject.annotations ?? {},
  };
  const versions = response.objectVersion.map((o) => ({ id: o.id, version: o.version }));
  const trailers = { ...expiryOf(ss, response, versions, deps.log), changeKeys };

  // Decide.
  const hash = deps.hasher.hash({
    secretSyncUid: ss.metadata.uid,
    ...desired,
    forceSynchronization: ss.spec.forceSynchronization ?? '',
  });
  if (phase === 'update' && hash === ss.status?.syncHash) {
    // Nothing new to write — but the Secret may have been deleted or edited by hand (the manager
    // may not read Secrets, so it cannot look): re-assert its data, a no-op when it is intact.
    const repaired = await deps.writer.write(ss, desired, 'reassert');
    if (repaired === 'unchanged')
      return { ok: true, reason: 'UpdateNoValueChangeSucceeded', hash, versions, wrote: false, ...trailers };
    // The Secret's value did change (back to the source's): reported like any value change, so
    // that `kubectl describe` shows an Event.
    deps.log.info(
      repaired === 'created'
        ? 'Secret was missing; created it again'
        : 'Secret differed from its source (changed by hand?); put its data back',
      { secretSync: `${ss.metadata.namespace}/${ss.metadata.name}` },
    );
    return { ok: true, reason: 'UpdateValueChangeOrForceUpdateSucceeded', hash, versions, wrote: true, ...trailers };
  }

  // Apply.
  await deps.writer.write(ss, desired, phase);
  return {
    ok: true,
    reason: phase === 'create' ? 'CreateSucceeded' : 'UpdateValueChangeOrForceUpdateSucceeded',
    hash,
    versions,
    wrote: true,
    ...trailers,
  };
}

/** The provider's expiry trailer, kept to the objects it returned; a bad entry is logged, never fatal. */
function expiryOf(
  ss: SecretSync,
  response: MountAnswer,
  versions: { id: string }[],
  log: Logger,
): { expiresOn?: Record<string, Date> } {
  if (!response.expiry) return {};
  const ids = new Set(versions.map((v) => v.id));
  const kept = Object.entries(response.expiry.expiresOn).filter(([id]) => ids.has(id));
  const ignored = response.expiry.dropped + Object.keys(response.expiry.expiresOn).length - kept.length;
  if (ignored > 0)
    log.warn("ignored entries of the provider's expiry trailer (not an object id it returned with an RFC 3339 time)", {
      secretSync: `${ss.metadata.namespace}/${ss.metadata.name}`,
      ignored,
    });
  return { expiresOn: Object.fromEntries(kept) };
}

function validateSecretSync(ss: SecretSync, cfg: Config): void {
  const obj = ss.spec.secretObject;
  for (const [what, map] of [
    ['label', obj.labels],
    ['annotation', obj.annotations],
  ] as const) {
    const reserved = Object.keys(map ?? {}).find((k) => k.startsWith(RESERVED_PREFIX));
    if (reserved) throw new SyncError(FAILURES.reservedKey({ what, key: reserved }));
  }
  const type = obj.type || 'Opaque';
  if (!cfg.allowedSecretTypes.includes(type)) {
    throw new SyncError(FAILURES.typeNotAllowed({ type, allowed: cfg.allowedSecretTypes }));
  }
  if (!obj.data?.length) throw new SyncError(FAILURES.noKeys());
}

async function secretProviderClass(ss: SecretSync, deps: ReconcileDeps): Promise<SecretProviderClass> {
  const name = ss.spec.secretProviderClassName;
  const spc = await deps.spc(ss.metadata.namespace, name);
  if (!spc)
    throw new SyncError(FAILURES.spcNotFound({ name, namespace: ss.metadata.namespace }), {
      missing: { kind: 'secretProviderClass', name },
    });
  if (!spc.spec?.provider) throw new SyncError(FAILURES.spcNoProvider({ name }));
  deps.providers.checkName(spc.spec.provider);
  if (!spc.spec.parameters || Object.keys(spc.spec.parameters).length === 0)
    throw new SyncError(FAILURES.spcNoParameters({ name }));
  return spc;
}
