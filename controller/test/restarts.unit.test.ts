// Rollout restarts (restarts.ts) against a fake apps API and fake timers: what counts as a value
// change, one rollout per window, the minimum interval, idempotent values, and bad opt-ins.
import { jest } from '@jest/globals';
import type { Logger } from '../src/log.js';
import {
  isValueChange,
  MAX_SECRETSYNCS_PER_WORKLOAD,
  namedSecretSyncs,
  RESTART_SECRETSYNCS_ANNOTATION,
  RESTARTED_FOR_ANNOTATION,
  restartValue,
  Restarts,
  type Kind,
  type Versions,
  type Workload,
  type WorkloadApi,
} from '../src/restarts.js';
import { secretSync } from '../../test/helpers/fixtures.js';

const v = (...pairs: string[]): Versions => pairs.map((p) => ({ id: p.split('=')[0]!, version: p.split('=')[1]! }));
const synced = (o: { hash: string; versions: Versions }) =>
  secretSync({
    name: 'app',
    namespace: 'ns',
    uid: 'u1',
    status: { syncHash: o.hash, syncedObjectVersions: [...o.versions] },
  });

describe('isValueChange', () => {
  const ss = synced({ hash: 'h1', versions: v('a=1') });
  test.each([
    ['a new value with a new version', { hash: 'h2', versions: v('a=2'), wrote: true }, true],
    ['the first sync (no hash in status)', 'first', false],
    ['a no-change rotation', { hash: 'h1', versions: v('a=1'), wrote: false }, false],
    ['a drift repair: same hash, data put back', { hash: 'h1', versions: v('a=1'), wrote: true }, false],
    ['a new version of the same value', { hash: 'h1', versions: v('a=2'), wrote: false }, false],
    ['a lost hash key: new hash, same versions', { hash: 'h9', versions: v('a=1'), wrote: true }, false],
  ] as const)('%s', (_what, o, expected) => {
    if (o === 'first')
      return expect(isValueChange(secretSync({ name: 'x' }), { hash: 'h', versions: v('a=1'), wrote: true })).toBe(
        expected,
      );
    expect(isValueChange(ss, o)).toBe(expected);
  });
  test('a status without versions (the upstream CRD drops them): the hash alone decides', () => {
    const upstream = secretSync({ name: 'app', status: { syncHash: 'h1' } });
    expect(isValueChange(upstream, { hash: 'h2', versions: v('a=1'), wrote: true })).toBe(true);
  });
});

test('the opt-in annotation: names of the namespace, deduplicated, at most 16, valid names only', () => {
  expect(namedSecretSyncs(undefined)).toEqual({ skip: 'not_opted_in' });
  expect(namedSecretSyncs({ [RESTART_SECRETSYNCS_ANNOTATION]: ' ' })).toEqual({ skip: 'not_opted_in' });
  expect(namedSecretSyncs({ [RESTART_SECRETSYNCS_ANNOTATION]: 'db, api-key,db' })).toEqual({
    names: ['db', 'api-key'],
  });
  expect(namedSecretSyncs({ [RESTART_SECRETSYNCS_ANNOTATION]: 'other-ns/db' })).toEqual({ skip: 'invalid_annotation' });
  const many = Array.from({ length: MAX_SECRETSYNCS_PER_WORKLOAD + 1 }, (_, i) => `s${i}`).join(',');
  expect(namedSecretSyncs({ [RESTART_SECRETSYNCS_ANNOTATION]: many })).toEqual({ skip: 'invalid_annotation' });
});

test('the restart value depends on the versions only, not on their order or the names’ order', () => {
  const a = restartValue([
    ['x', v('o1=1', 'o2=1')],
    ['y', v('o=3')],
  ]);
  expect(
    restartValue([
      ['y', v('o=3')],
      ['x', v('o2=1', 'o1=1')],
    ]),
  ).toBe(a);
  expect(
    restartValue([
      ['x', v('o1=1', 'o2=2')],
      ['y', v('o=3')],
    ]),
  ).not.toBe(a);
  expect(a).toMatch(/^sha256:[0-9a-f]{32}$/);
});

/** Workloads by kind, patched in place, with every call recorded. */
function fakeApps(workloads: Workload[]) {
  const patches: string[] = [];
  let fail: { code: number } | undefined;
  const api: WorkloadApi = {
    list: async (kind: Kind, ns: string) => workloads.filter((w) => w.kind === kind && w.metadata.namespace === ns),
    patch: async (w, value) => {
      if (fail) throw Object.assign(new Error('refused'), fail);
      patches.push(`${w.kind}/${w.metadata.name}`);
      w.template = { ...w.template, [RESTARTED_FOR_ANNOTATION]: value };
    },
  };
  return { api, patches, failWith: (e: { code: number } | undefined) => (fail = e) };
}

const workload = (name: string, names: string, kind: Kind = 'Deployment', ns = 'ns'): Workload => ({
  kind,
  metadata: { name, namespace: ns, uid: `uid-${name}`, annotations: { [RESTART_SECRETSYNCS_ANNOTATION]: names } },
  template: {},
});

const log = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} } as unknown as Logger;

function setup(workloads: Workload[], o: { debounceMs?: number; minIntervalMs?: number } = {}) {
  const apps = fakeApps(workloads);
  const counts: Record<string, number> = {};
  const events: string[] = [];
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  let now = 0;
  const restarts = new Restarts({
    api: apps.api,
    versionsOf: () => undefined,
    events: {
      record: (ss, type, reason) => events.push(`SecretSync/${ss.metadata.name} ${type} ${reason}`),
      recordOn: (ref, e) => events.push(`${ref.kind}/${ref.name} ${e.type} ${e.reason}`),
    },
    metrics: {
      restarts: { inc: (l: Record<string, string>) => count(`restarts ${l.namespace} ${l.kind}`) },
      restartsSkipped: { inc: (l: Record<string, string>) => count(l.reason!) },
    } as never,
    log,
    debounceMs: o.debounceMs ?? 10_000,
    minIntervalMs: o.minIntervalMs ?? 60_000,
    now: () => now,
  });
  const advance = async (ms: number) => {
    now += ms;
    await jest.advanceTimersByTimeAsync(ms);
  };
  return { restarts, apps, counts, events, advance };
}

const change = (name: string, ns = 'ns') => secretSync({ name, namespace: ns, uid: `uid-${name}` });

/** SecretSync a changes to o=2, and a window (1 s) later to `second`; a window later. */
async function changeTwice(t: Pick<ReturnType<typeof setup>, 'restarts' | 'advance'>, second: Versions) {
  t.restarts.changed(change('a'), v('o=2'));
  await t.advance(1_000);
  t.restarts.changed(change('a'), second);
  await t.advance(1_000);
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('changes within the window give one rollout per workload, with an Event on it and on the SecretSync', async () => {
  const { restarts, apps, counts, events, advance } = setup([
    workload('web', 'a,b,c'),
    workload('db', 'c', 'StatefulSet'),
    workload('other', 'z'),
  ]);
  restarts.changed(change('a'), v('o=2'));
  await advance(3_000);
  restarts.changed(change('b'), v('o=5'));
  restarts.changed(change('a'), v('o=3'));
  expect(apps.patches).toEqual([]);
  await advance(7_000);
  expect(apps.patches).toEqual(['Deployment/web']);
  expect(counts).toMatchObject({ debounced: 2, 'restarts ns Deployment': 1 });
  expect(events).toEqual([
    'Deployment/web Normal RolloutRestarted',
    'SecretSync/a Normal WorkloadRolledOut',
    'SecretSync/b Normal WorkloadRolledOut',
  ]);
  expect(restarts.pending).toBe(0);
});

test('a second change within the minimum interval waits for its end, then rolls once', async () => {
  const { restarts, apps, counts, advance } = setup([workload('web', 'a')], {
    debounceMs: 1_000,
    minIntervalMs: 60_000,
  });
  await changeTwice({ restarts, advance }, v('o=3'));
  expect(apps.patches).toEqual(['Deployment/web']);
  expect(counts.rate_limited).toBe(1);
  await advance(58_000);
  expect(apps.patches).toHaveLength(1);
  await advance(1_000);
  expect(apps.patches).toEqual(['Deployment/web', 'Deployment/web']);
});

test('the same versions again (a replay, another leader) patch nothing', async () => {
  const { restarts, apps, counts, advance } = setup([workload('web', 'a')], { debounceMs: 1_000, minIntervalMs: 0 });
  await changeTwice({ restarts, advance }, v('o=2'));
  expect(apps.patches).toEqual(['Deployment/web']);
  expect(counts.unchanged).toBe(1);
});

test('only workloads of the changed namespace that name the SecretSync; bad opt-ins are counted, not patched', async () => {
  const bad = workload('bad', 'a, ../b');
  const none = workload('none', '');
  const { restarts, apps, counts, advance } = setup([
    workload('there', 'a', 'Deployment', 'elsewhere'),
    workload('ds', 'a', 'DaemonSet'),
    bad,
    none,
  ]);
  restarts.changed(change('a'), v('o=2'));
  await advance(10_000);
  expect(apps.patches).toEqual(['DaemonSet/ds']);
  expect(counts).toMatchObject({ invalid_annotation: 1, not_opted_in: 1 });
});

test('a refused patch is counted and not retried; a conflict is tried again', async () => {
  const { restarts, apps, counts, advance } = setup([workload('web', 'a')], { debounceMs: 1_000 });
  apps.failWith({ code: 403 });
  restarts.changed(change('a'), v('o=2'));
  await advance(1_000);
  expect(counts.failed).toBe(1);
  await advance(10_000);
  expect(counts.failed).toBe(1);
  apps.failWith({ code: 409 });
  restarts.changed(change('a'), v('o=3'));
  await advance(1_000);
  apps.failWith(undefined);
  await advance(1_000);
  expect(apps.patches).toEqual(['Deployment/web']);
});

test('stop drops the open windows', async () => {
  const { restarts, apps, advance } = setup([workload('web', 'a')]);
  restarts.changed(change('a'), v('o=2'));
  await restarts.stop();
  await advance(20_000);
  expect(apps.patches).toEqual([]);
  restarts.changed(change('a'), v('o=3'));
  expect(restarts.pending).toBe(0);
});
