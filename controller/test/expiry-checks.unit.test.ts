// When expiry checks run (expiry-checks.ts) and what one writes (status.ts): a tenant's expiry
// times must not choose the manager's reconcile rate, and a check recomputes, never Mounts.
import type { SecretSync } from '../src/api.js';
import { nextExpiryCheck } from '../src/expiry-checks.js';
import { recheckedExpiry } from '../src/status.js';
import { secretSync } from '../../test/helpers/fixtures.js';

const MIN = 60_000;
const DAY = 86_400_000;
const now = Date.UTC(2026, 0, 1);
const at = (ms: number) => new Date(now + ms);
const noJitter = () => 0;

test('the first check is 1 s after the next transition: entering the warning window or expiring', () => {
  const o = { now, warnMs: 30 * DAY, floorMs: 5 * MIN, random: noJitter };
  expect(nextExpiryCheck([at(40 * DAY)], o)).toBe(10 * DAY + 1_000);
  expect(nextExpiryCheck([at(10 * DAY), at(40 * DAY)], o)).toBe(10 * DAY + 1_000);
  expect(nextExpiryCheck([at(-DAY)], o)).toBeUndefined();
  expect(nextExpiryCheck([], o)).toBeUndefined();
});

test('staggered expiry times a second apart cost one check per floor, not one per second', () => {
  const floorMs = 5 * MIN;
  // 256 objects expiring one second apart, the first 2 s from now.
  const objects = Array.from({ length: 256 }, (_, i) => at(2_000 + i * 1_000));
  let t = now;
  let last: number | undefined;
  let checks = 0;
  for (;;) {
    const d = nextExpiryCheck(objects, {
      now: t,
      warnMs: 0,
      floorMs,
      random: noJitter,
      ...(last === undefined ? {} : { lastCheckAt: last }),
    });
    if (d === undefined) break;
    t += d;
    last = t;
    checks++;
    expect(checks).toBeLessThan(10);
  }
  // 257 s of transitions: the check at 3 s, then one a floor later that sees the rest expired.
  expect(checks).toBe(2);
  expect(t - now).toBe(3_000 + floorMs);
});

test('jitter delays a check by up to a tenth of the floor, never brings it forward', () => {
  const o = { now, warnMs: 0, floorMs: 5 * MIN };
  expect(nextExpiryCheck([at(MIN)], { ...o, random: () => 0.999 })).toBe(MIN + 1_000 + 29_970);
  expect(nextExpiryCheck([at(MIN)], { ...o, lastCheckAt: now, random: () => 0.5 })).toBe(5 * MIN + 15_000);
});

const synced = (
  expiresOn: Record<string, Date>,
  expiring: { status: 'True' | 'False'; reason: string; message: string },
): SecretSync =>
  secretSync({
    name: 'app',
    namespace: 'n',
    generation: 3,
    resourceVersion: '7',
    sa: 'sa',
    spc: 'spc',
    type: 'Opaque',
    data: [],
    status: {
      syncedObjectVersions: Object.entries(expiresOn).map(([id, d]) => ({
        id,
        version: '1',
        expiresOn: d.toISOString(),
      })),
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'CreateSucceeded',
          message: '',
          observedGeneration: 3,
          lastTransitionTime: '2025-12-01T00:00:00Z',
        },
        { type: 'Expiring', ...expiring, observedGeneration: 3, lastTransitionTime: '2025-12-01T00:00:00Z' },
      ],
    },
  });

test('a check moves the Expiring condition from the stored expiry times and leaves the rest alone', () => {
  const ss = synced(
    { 'secret/a': at(-1_000) },
    { status: 'True', reason: 'ObjectExpiring', message: 'Expiring within 30 days: secret/a' },
  );
  const conditions = recheckedExpiry(ss, new Date(now), 30 * DAY)!;
  expect(conditions.find((c) => c.type === 'Expiring')).toMatchObject({
    status: 'True',
    reason: 'ObjectExpired',
    message: expect.stringContaining('secret/a'),
    observedGeneration: 3,
  });
  expect(conditions.find((c) => c.type === 'Ready')).toEqual(ss.status!.conditions!.find((c) => c.type === 'Ready'));
});

test('a check that would change nothing writes nothing; without stored expiry times there is nothing to check', () => {
  const ss = synced({ 'secret/a': at(40 * DAY) }, { status: 'False', reason: 'NoObjectExpiring', message: 'x' });
  const first = recheckedExpiry(ss, new Date(now), 30 * DAY)!;
  const again = { ...ss, status: { ...ss.status, conditions: first } } as SecretSync;
  expect(recheckedExpiry(again, new Date(now), 30 * DAY)).toBeUndefined();
  expect(
    recheckedExpiry(synced({}, { status: 'False', reason: 'NoObjectExpiring', message: 'x' }), new Date(now), 30 * DAY),
  ).toBeUndefined();
});
