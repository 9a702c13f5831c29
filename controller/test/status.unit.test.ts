// nextStatus as a table, as the upstream's TestReconcile: each row a situation a user would see in
// `kubectl describe`, and the conditions it leaves — status and reason of each, and whether its
// lastTransitionTime moved (only when its status changed).
import type { SecretSync } from '../src/api.js';
import { nextStatus, storedChangeKeys, type Outcome } from '../src/status.js';
import { condition, secretSync } from '../../test/helpers/fixtures.js';

type Success = Extract<Outcome, { ok: true }>;

const NOW = new Date('2026-12-05T12:00:00Z');
const EARLIER = '2026-01-01T00:00:00Z';
const DAY = 86_400_000;
const WARN = 30 * DAY;
const inDays = (n: number) => new Date(NOW.getTime() + n * DAY);

const ok = (reason: Success['reason'], more: Partial<Success> = {}): Outcome => ({
  ok: true,
  reason,
  hash: 'hmac-sha256:new',
  versions: [{ id: 'secret/db', version: 'v2' }],
  wrote: reason !== 'UpdateNoValueChangeSucceeded',
  ...more,
});
const failed = (reason: Extract<Outcome, { ok: false }>['reason'], kind: Extract<Outcome, { ok: false }>['kind']) =>
  ({ ok: false, reason, kind, message: 'it went wrong.', advice: 'Do this.' }) as Outcome;

/** The status a SecretSync has after its first successful sync. */
const synced = (extra: SecretSync['status'] = {}): SecretSync['status'] => ({
  syncHash: 'hmac-sha256:old',
  lastSuccessfulSyncTime: EARLIER,
  syncedObjectVersions: [{ id: 'secret/db', version: 'v1' }],
  conditions: [condition('SecretCreated', 'True', 'CreateSucceeded'), condition('Ready', 'True', 'CreateSucceeded')],
  ...extra,
});

/**
 * What the conditions say afterwards: condition type → "status reason", a type not listed must be
 * absent; `moved`: the conditions whose lastTransitionTime is NOW (the others keep EARLIER).
 */
interface Then {
  conditions: Record<string, string>;
  moved: string[];
  /** The syncHash afterwards: the new one on success, the last good one on failure, none before any. */
  syncHash?: string;
}

const NEW = 'hmac-sha256:new';
const OLD = 'hmac-sha256:old';
const CREATED = 'True CreateSucceeded';
const UNCHANGED = 'True UpdateNoValueChangeSucceeded';
const CHANGED = 'True UpdateValueChangeOrForceUpdateSucceeded';
/** The conditions of a failed update or create: SecretUpdated (or SecretCreated) and Ready, both False. */
const failedUpdate = (reason: string) => ({
  SecretCreated: CREATED,
  SecretUpdated: `False ${reason}`,
  Ready: `False ${reason}`,
});
const failedCreate = (reason: string) => ({ SecretCreated: `False ${reason}`, Ready: `False ${reason}` });
const updated = (ready: string, more: Record<string, string> = {}) => ({
  SecretCreated: CREATED,
  SecretUpdated: ready,
  Ready: ready,
  ...more,
});
/** An earlier update that failed. */
const afterFailure = synced({
  conditions: [
    condition('SecretCreated', 'True', 'CreateSucceeded'),
    condition('SecretUpdated', 'False', 'UpdateFailedProviderError'),
    condition('Ready', 'False', 'UpdateFailedProviderError'),
  ],
});
const expiring = (status: 'True' | 'False', reason: string) =>
  synced({ conditions: [...synced()!.conditions!, condition('Expiring', status, reason)] });
const providerError = failed('UpdateFailedProviderError', 'provider');

type Row = [string, SecretSync['status'], Outcome, Then];

type Failure = Extract<Outcome, { ok: false }>;
/**
 * Failures: before any Secret they are on SecretCreated; once there is one, on SecretUpdated, and
 * the Secret keeps its last good value (the hash of which stays).
 */
const failures: Row[] = (
  [
    ['a provider failure before any Secret', 'CreateFailedProviderError', 'provider'],
    ['a Secret of the same name that is not ours is refused', 'CreateFailedInvalidLabel', 'invalidLabel'],
    ['a bad SecretSync before any Secret', 'UserInputValidationFailed', 'userInput'],
    ['a provider failure after the Secret exists', 'UpdateFailedProviderError', 'provider'],
    ['our Secret whose owner annotation was changed is refused', 'UpdateFailedInvalidAnnotation', 'invalidAnnotation'],
  ] as [string, Failure['reason'], Failure['kind']][]
).map(([name, reason, kind]) => {
  const later = reason.startsWith('Update');
  const then = later
    ? { conditions: failedUpdate(reason), moved: ['SecretUpdated', 'Ready'], syncHash: OLD }
    : { conditions: failedCreate(reason), moved: ['SecretCreated', 'Ready'] };
  return [`${name}: ${reason}`, later ? synced() : undefined, failed(reason, kind), then];
});

const rows: Row[] = [
  [
    'first sync creates the Secret: SecretCreated and Ready say CreateSucceeded',
    undefined,
    ok('CreateSucceeded'),
    { conditions: { SecretCreated: CREATED, Ready: CREATED }, moved: ['SecretCreated', 'Ready'], syncHash: NEW },
  ],
  [
    'an unchanged value writes nothing: UpdateNoValueChangeSucceeded',
    synced(),
    ok('UpdateNoValueChangeSucceeded', { hash: OLD }),
    { conditions: updated(UNCHANGED), moved: ['SecretUpdated'], syncHash: OLD },
  ],
  [
    'a changed value updates the Secret: UpdateValueChangeOrForceUpdateSucceeded',
    synced(),
    ok('UpdateValueChangeOrForceUpdateSucceeded'),
    { conditions: updated(CHANGED), moved: ['SecretUpdated'], syncHash: NEW },
  ],
  ...failures,
  [
    'a failure repeated keeps the time the SecretSync went un-Ready',
    afterFailure,
    providerError,
    { conditions: failedUpdate('UpdateFailedProviderError'), moved: [], syncHash: OLD },
  ],
  [
    'a success after a failed update clears it: Ready and SecretUpdated True again',
    afterFailure,
    ok('UpdateNoValueChangeSucceeded', { hash: OLD }),
    { conditions: updated(UNCHANGED), moved: ['SecretUpdated', 'Ready'], syncHash: OLD },
  ],
  [
    'an update success where SecretCreated was never True sets it too',
    synced({ conditions: [condition('Ready', 'False', 'ControllerSpcError')] }),
    ok('UpdateValueChangeOrForceUpdateSucceeded'),
    { conditions: updated(CHANGED), moved: ['SecretCreated', 'SecretUpdated', 'Ready'], syncHash: NEW },
  ],
  [
    'objects expiring after the warning window: Expiring False (NoObjectExpiring)',
    undefined,
    ok('CreateSucceeded', { expiresOn: { 'secret/db': inDays(40) } }),
    {
      conditions: { SecretCreated: CREATED, Ready: CREATED, Expiring: 'False NoObjectExpiring' },
      moved: ['SecretCreated', 'Ready', 'Expiring'],
      syncHash: NEW,
    },
  ],
  [
    'an object expiring within the window: Expiring True (ObjectExpiring), Ready stays True',
    expiring('False', 'NoObjectExpiring'),
    ok('UpdateNoValueChangeSucceeded', { expiresOn: { 'secret/db': inDays(10) } }),
    {
      conditions: updated(UNCHANGED, { Expiring: 'True ObjectExpiring' }),
      moved: ['SecretUpdated', 'Expiring'],
      syncHash: NEW,
    },
  ],
  [
    'an object already expired: Expiring True (ObjectExpired); the Secret keeps serving, Ready stays True',
    expiring('True', 'ObjectExpiring'),
    ok('UpdateNoValueChangeSucceeded', { expiresOn: { 'secret/db': inDays(-1) } }),
    { conditions: updated(UNCHANGED, { Expiring: 'True ObjectExpired' }), moved: ['SecretUpdated'], syncHash: NEW },
  ],
  [
    'a provider that stops reporting expiry: the Expiring condition is removed',
    expiring('True', 'ObjectExpiring'),
    ok('UpdateNoValueChangeSucceeded'),
    { conditions: updated(UNCHANGED), moved: ['SecretUpdated'], syncHash: NEW },
  ],
  [
    'a provider failure leaves the Expiring condition as the last sync left it',
    expiring('True', 'ObjectExpiring'),
    providerError,
    {
      conditions: { ...failedUpdate('UpdateFailedProviderError'), Expiring: 'True ObjectExpiring' },
      moved: ['SecretUpdated', 'Ready'],
      syncHash: OLD,
    },
  ],
];

test.each(rows)('%s', (_, before, outcome, { conditions, moved, syncHash }) => {
  const ss = secretSync({ name: 'app', namespace: 'n', uid: 'u-app', generation: 4, status: before });
  const status = nextStatus(ss, outcome, NOW, WARN);
  const got = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));
  expect(got).toEqual(conditions);
  const times = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.lastTransitionTime]));
  expect(times).toEqual(
    Object.fromEntries(Object.keys(conditions).map((t) => [t, moved.includes(t) ? '2026-12-05T12:00:00Z' : EARLIER])),
  );
  expect(status.syncHash).toBe(syncHash);
  expect(status.observedGeneration).toBe(4);
  // Every condition this write set speaks of this generation.
  for (const c of status.conditions ?? []) {
    if (moved.includes(c.type) || c.type === 'Ready') expect(c.observedGeneration).toBe(4);
  }
});

test('a success records the time, the versions and each expiry; the earliest is the status expiresOn', () => {
  const ss = secretSync({ name: 'app', namespace: 'n', uid: 'u-app', generation: 1 });
  const status = nextStatus(
    ss,
    ok('CreateSucceeded', {
      versions: [
        { id: 'secret/a', version: '1' },
        { id: 'secret/b', version: '2' },
      ],
      expiresOn: { 'secret/a': inDays(40), 'secret/b': inDays(35) },
    }),
    NOW,
    WARN,
  );
  expect(status.lastSuccessfulSyncTime).toBe('2026-12-05T12:00:00Z');
  expect(status.syncedObjectVersions).toEqual([
    { id: 'secret/a', version: '1', expiresOn: '2027-01-14T12:00:00Z' },
    { id: 'secret/b', version: '2', expiresOn: '2027-01-09T12:00:00Z' },
  ]);
  expect(status.expiresOn).toBe('2027-01-09T12:00:00Z');
});

test("a success keeps each object's change key, so a restarted manager hears its notices; none when none was named", () => {
  const ss = secretSync({ name: 'app', namespace: 'n', uid: 'u-app', generation: 1 });
  const versions = [
    { id: 'secret/a', version: '1' },
    { id: 'secret/b', version: '2' },
  ];
  const status = nextStatus(ss, ok('CreateSucceeded', { versions, changeKeys: { 'secret/a': 'ka' } }), NOW, WARN);
  expect(status.syncedObjectVersions).toEqual([{ id: 'secret/a', version: '1', changeKey: 'ka' }, versions[1]]);
  expect(storedChangeKeys(secretSync({ name: 'app', namespace: 'n', uid: 'u-app', status }))).toEqual(['ka']);
  const later = nextStatus(
    secretSync({ name: 'app', namespace: 'n', uid: 'u-app', generation: 1, status }),
    ok('UpdateNoValueChangeSucceeded', { versions }),
    NOW,
    WARN,
  );
  expect(later.syncedObjectVersions).toEqual(versions);
});

test('a failure keeps the last successful sync time and versions, and its message ends in one period', () => {
  const ss = secretSync({ name: 'app', namespace: 'n', uid: 'u-app', generation: 2, status: synced() });
  const status = nextStatus(ss, failed('UpdateFailedProviderError', 'provider'), NOW, WARN);
  expect(status.lastSuccessfulSyncTime).toBe(EARLIER);
  expect(status.syncedObjectVersions).toEqual([{ id: 'secret/db', version: 'v1' }]);
  expect(status.conditions?.find((c) => c.type === 'Ready')?.message).toBe('it went wrong. Do this.');
});
