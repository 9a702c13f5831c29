// Every text the manager writes for a user — into a SecretSync's conditions and Events — in one
// place, each with the failure kind (so the status reason, reasons.ts) and the retry it comes with.
// SyncError, the status and the Event recorder take only what this file makes (a branded type), so
// the compiler keeps new messages here; test/messages.unit.test.ts checks that nothing outside
// casts its way around that. No text may hold a secret value or a token.
import { rfc3339 } from '@secret-store-sync/proto';
import { MANAGED_LABEL, OWNER_ANNOTATION } from './api.js';
import { REASONS, type FailureKind, type Reason, type Retry } from './reasons.js';

/** Where a namespace's owner lists the ServiceAccounts the manager may mint tokens for (the chart's token policy). */
const TOKEN_SERVICE_ACCOUNTS_ANNOTATION = 'secret-store-sync.x-k8s.io/token-service-accounts';

declare const catalogued: unique symbol;
/** A text from this catalog. */
export type Text = string & { readonly [catalogued]: true };
/** A failure from this catalog: what went wrong, its kind (the status reason) and how it is retried. */
export interface Failure {
  readonly kind: FailureKind;
  readonly retry: Retry;
  readonly text: Text;
}

const text = (s: string) => s as Text;
const userInput = (s: string): Failure => ({ kind: 'userInput', retry: 'slow', text: text(s) });
const spc = (s: string): Failure => ({ kind: 'spc', retry: 'slow', text: text(s) });
const provider = (s: string): Failure => ({ kind: 'provider', retry: 'backoff', text: text(s) });
const patch = (s: string, retry: Retry = 'backoff'): Failure => ({ kind: 'patch', retry, text: text(s) });
const internal = (s: string): Failure => ({ kind: 'internal', retry: 'backoff', text: text(s) });

export const FAILURES = {
  // The SecretSync (reconcile.ts, mapping.ts, secret-writer.ts).
  reservedKey: (o: { what: 'label' | 'annotation'; key: string }) =>
    userInput(`${o.what} ${o.key} in spec.secretObject is reserved for the manager`),
  typeNotAllowed: (o: { type: string; allowed: string[] }) =>
    userInput(`spec.secretObject.type '${o.type}' is not allowed; allowed types: ${o.allowed.join(', ')}`),
  typeNeverWritten: (o: { type: string }) =>
    userInput(`spec.secretObject.type '${o.type}' is never written by the manager`),
  noKeys: () => userInput('spec.secretObject.data lists no keys'),
  emptySourcePath: () => userInput('a secretObject.data entry has an empty sourcePath'),
  emptyTargetKey: () => userInput('a secretObject.data entry has an empty targetKey'),
  sourcePathMissing: (o: { source: string; known: string[] }) =>
    userInput(
      `sourcePath '${o.source}' is not among the files the provider returned (${o.known.join(', ') || 'none'}); check objectName/objectAlias and objectVersionHistory in the SecretProviderClass`,
    ),
  tlsNeedsBoth: () => userInput('a kubernetes.io/tls Secret needs both tls.crt and tls.key in secretObject.data'),
  tlsKeyNotAllowed: (o: { key: string }) =>
    userInput(`targetKey '${o.key}' is not allowed in a kubernetes.io/tls Secret: use tls.crt and tls.key`),
  pkcs12Refused: (o: { key: string; source: string; detail: string }) =>
    userInput(`${o.key}: the provider's file '${o.source}' is refused: ${o.detail}`),
  notCertificateAndKey: (o: { key: string; detail: string }) =>
    userInput(`${o.key}: the provider's file is not a usable PEM or PKCS#12 certificate and key (${o.detail})`),
  secretTooLarge: (o: { bytes: number }) =>
    userInput(`the Secret would hold ${o.bytes} bytes, over the 1 MiB a Secret can hold; map fewer files`),
  serviceAccountNotFound: (o: { serviceAccount: string; namespace: string }) =>
    userInput(
      `ServiceAccount '${o.serviceAccount}' was not found in namespace '${o.namespace}': create it, or fix spec.serviceAccountName`,
    ),

  // The SecretProviderClass (reconcile.ts, provider.ts).
  spcNotFound: (o: { name: string; namespace: string }) =>
    spc(`SecretProviderClass '${o.name}' was not found in namespace '${o.namespace}'`),
  // The cache had no such class and the apiserver could not say (controller.ts): retried like an outage.
  spcUnreadable: (o: { name: string; detail: string }): Failure => ({
    kind: 'spc',
    retry: 'backoff',
    text: text(`could not read SecretProviderClass '${o.name}': ${o.detail}`),
  }),
  spcNoProvider: (o: { name: string }) => spc(`SecretProviderClass '${o.name}' has no spec.provider`),
  spcNoParameters: (o: { name: string }) => spc(`SecretProviderClass '${o.name}' has no spec.parameters`),
  providerName: (o: { provider: string }) =>
    spc(`spec.provider '${o.provider}' is not a provider name (1-30 letters, digits, '-' or '_')`),

  // The provider (provider.ts); `detail` is the provider's own message.
  providerNotRunning: (o: { provider: string; socket: string }) =>
    provider(`provider '${o.provider}' is not running: no socket at ${o.socket}`),
  providerErrorCode: (o: { provider: string; code: string }) =>
    provider(`provider '${o.provider}' reported error code '${o.code}'`),
  providerNoVersions: (o: { provider: string }) => provider(`provider '${o.provider}' returned no object versions`),
  providerFailed: (o: { provider: string; code: string; detail: string; reason?: string }) =>
    provider(`provider '${o.provider}': ${o.code}: ${o.detail}${o.reason ? ` (${o.reason})` : ''}`),
  providerTimedOut: (o: { provider: string; seconds: number; reason?: string }) =>
    provider(
      `provider '${o.provider}': DEADLINE_EXCEEDED: did not answer within ${o.seconds} s${o.reason ? ` (${o.reason})` : ''}`,
    ),

  // The Secret (secret-writer.ts); `detail` is the apiserver's message.
  notLabelled: (o: { name: string }) => ({
    kind: 'invalidLabel' as const,
    retry: 'slow' as const,
    text: text(
      `Secret '${o.name}' exists but does not carry the label ${MANAGED_LABEL}="" that marks Secrets this manager manages; it was left untouched`,
    ),
  }),
  notAnnotated: (o: { name: string; uid: string }) => ({
    kind: 'invalidAnnotation' as const,
    retry: 'slow' as const,
    text: text(
      `Secret '${o.name}' exists but its annotation ${OWNER_ANNOTATION} does not name this SecretSync (uid ${o.uid}); it was left untouched`,
    ),
  }),
  ownerChanged: (o: { name: string }) =>
    patch(`Secret '${o.name}' no longer has this SecretSync as its owner reference; it was left untouched`, 'slow'),
  typeChanged: (o: { name: string; type: string }) =>
    userInput(
      `Secret '${o.name}' has another type than spec.secretObject.type '${o.type}', and a Secret's type cannot change: delete the Secret to let the manager recreate it`,
    ),
  secretVanished: (o: { name: string }) => patch(`Secret '${o.name}' vanished and could not be created again`),
  writeFailed: (o: { name: string; detail: string }) => patch(`writing Secret '${o.name}' failed: ${o.detail}`),
  createFailed: (o: { name: string; detail: string }) => patch(`creating Secret '${o.name}' failed: ${o.detail}`),

  // The manager itself (tokens.ts, reconcile.ts).
  tokenForbidden: (o: { serviceAccount: string; detail: string }) =>
    internal(
      `the manager may not mint tokens for ServiceAccount '${o.serviceAccount}' (check its RBAC: serviceaccounts/token create): ${o.detail}`,
    ),
  tokenRefusedByPolicy: (o: { serviceAccount: string; detail: string }): Failure => ({
    kind: 'tokenPolicy',
    retry: 'slow',
    text: text(`a token for ServiceAccount '${o.serviceAccount}' was refused by an admission policy: ${o.detail}`),
  }),
  tokenRequestFailed: (o: { serviceAccount: string; detail: string }) =>
    internal(`TokenRequest for ServiceAccount '${o.serviceAccount}' failed: ${o.detail}`),
  unexpected: (o: { detail: string }) => internal(`unexpected error: ${o.detail}`),
} satisfies Record<string, (o: never) => Failure>;

/** What to do about it, appended to messages so `kubectl describe` tells the user the next step. */
const ADVICE: Record<Exclude<FailureKind, 'provider'>, string> = {
  invalidLabel:
    'The Secret is not managed by this SecretSync; delete it (kubectl delete secret) to let the manager create it.',
  invalidAnnotation:
    'The Secret is not managed by this SecretSync; delete it (kubectl delete secret) to let the manager create it.',
  userInput: 'Correct the SecretSync and apply it again.',
  spc: 'Correct the SecretProviderClass and apply it again.',
  internal: 'Check the manager logs (container manager) and events.',
  tokenPolicy: `The fix is in the cluster's configuration, not in the SecretSync: as the policy's message says, opt the ServiceAccount in (the namespace annotation ${TOKEN_SERVICE_ACCOUNTS_ANNOTATION}, set by the namespace's owner) or allow the audience for the provider (the chart's provider.tokenAudiences or extraProviders[].tokenAudiences).`,
  patch:
    'Check the events and the message above; if the Secret was changed by someone else, delete it and let the manager recreate it.',
};

/** Where provider-azure runs in the chart's pod; other providers run wherever their operator put them. */
const AZURE_CONTAINER = 'provider-azure-installer';

/** The next step for a failure; for a provider, which one and where it runs. */
export function adviceFor(err: { kind: FailureKind; provider?: string; socket?: string }): Text {
  if (err.kind !== 'provider') return text(ADVICE[err.kind]);
  const where =
    err.provider === 'azure'
      ? `container ${AZURE_CONTAINER}`
      : err.provider
        ? `the process serving provider '${err.provider}'${err.socket ? ` on ${err.socket}` : ''}`
        : 'the provider';
  return text(`Check the logs of ${where}, the identity's permissions and the SecretProviderClass.`);
}

/** A failed condition's message: the failure, then what to do. */
export function failedCondition(o: { message: string; advice: string }): Text {
  // Providers' own messages often end in a period already: one, not two.
  return text(`${o.message.replace(/[.\s]+$/, '')}. ${o.advice}`);
}

/** A succeeded condition's message: the guide's words for its reason (reasons.ts). */
export function succeededCondition(reason: Reason): Text {
  return text(REASONS[reason]);
}

/** A success's Event: the guide's words for its reason and the versions it synced. */
export function syncedEvent(o: { reason: Reason; versions: { id: string; version: string }[] }): Text {
  return text(`${REASONS[o.reason]} Versions: ${o.versions.map((v) => `${v.id}=${v.version}`).join(', ') || 'none'}`);
}

const expiryList = (xs: [string, Date][]) =>
  xs
    .slice(0, 5)
    .map(([id, d]) => `${id} (${rfc3339(d)})`)
    .join(', ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
const days = (ms: number) => (ms / 86_400_000).toFixed(ms < 86_400_000 ? 2 : 0);

/** The Expiring condition's messages, over objects sorted by expiry. */
export const EXPIRY = {
  expired: (o: { objects: [string, Date][] }) =>
    text(
      `Expired: ${expiryList(o.objects)}. The Secret still holds the last values; put a new version in the provider's store.`,
    ),
  expiring: (o: { objects: [string, Date][]; warnMs: number }) =>
    text(
      `Expiring within ${days(o.warnMs)} days: ${expiryList(o.objects)}. Put a new version in the provider's store before then.`,
    ),
  none: (o: { objects: [string, Date][]; warnMs: number }) =>
    text(
      o.objects.length
        ? `No object expires within ${days(o.warnMs)} days; the first is ${expiryList(o.objects.slice(0, 1))}.`
        : 'No object reports an expiry.',
    ),
  /** The Event of an Expiring condition that turned True: its message, made by one of the above. */
  event: (condition: { message: string }) => text(condition.message),
};

/**
 * The log lines about providers' change notices (changes.ts, controller.ts). Fixed texts: the
 * provider, its reason and message, and counts go in fields, never a key's SecretSyncs' values.
 */
export const CHANGE_LOGS = {
  streamOpen: 'change notices: watching the provider',
  streamEnded: 'change notices: the stream ended; reopening it with backoff, SecretSyncs are polled meanwhile',
  unsupported: 'change notices: the provider has none (UNIMPLEMENTED); its SecretSyncs are polled only',
  receiving: 'change notices: the provider receives the change events of its store',
  notReceiving: 'change notices: the provider receives no change events; SecretSyncs are polled meanwhile',
  notice: 'change notice',
} as const;

const versionList = (versions: readonly { id: string; version: string }[]) =>
  versions
    .slice(0, 10)
    .map((v) => `${v.id}=${v.version}`)
    .join(', ') + (versions.length > 10 ? ` and ${versions.length - 10} more` : '');

/** The Events of a rollout restart (restarts.ts): names and versions, never values. */
export const RESTARTS = {
  /** On the workload: which SecretSyncs changed, to which versions. */
  workload: (o: { annotation: string; changes: { name: string; versions: { id: string; version: string }[] }[] }) =>
    text(
      `Rolled out (pod template annotation ${o.annotation}) for new values of ${o.changes
        .map((c) => `SecretSync ${c.name} (${versionList(c.versions) || 'no versions'})`)
        .join('; ')}.`,
    ),
  /** On each SecretSync that changed: which workload it rolled. */
  secretSync: (o: { kind: string; name: string; versions: { id: string; version: string }[] }) =>
    text(`Rolled out ${o.kind} ${o.name} for the new values. Versions: ${versionList(o.versions) || 'none'}`),
};
