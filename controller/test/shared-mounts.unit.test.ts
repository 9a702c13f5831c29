// Reads shared between identical Mounts (rotations, and runs a change notice caused): which calls
// reach the provider, and that a run a notice caused never takes a read older than the notice.
import type { MountResponse__Output } from '@secret-store-sync/proto';
import type { MountInput } from '../src/provider.js';
import { FRESH, SharedMounts, type Share } from '../src/shared-mounts.js';

const ROTATION: Share = { kind: 'rotation' };

function input(opts: { ns?: string; sa?: string; objects?: string; token?: string; synced?: string } = {}): MountInput {
  return {
    provider: 'azure',
    request: {
      parameters: { objects: opts.objects ?? 'a' },
      pod: { name: 'manager', uid: 'u', namespace: opts.ns ?? 'team-a' },
      serviceAccountName: opts.sa ?? 'app',
      tokens: { aud: { token: opts.token ?? 't1', expirationTimestamp: '2026-12-01T00:00:00Z' } },
      currentObjectVersions: [{ id: 'a', version: opts.synced ?? 'v0' }],
    },
  };
}

function fakeProvider() {
  const calls: MountInput[] = [];
  let fail = false;
  let release: (() => void) | undefined;
  return {
    calls,
    failNext: () => (fail = true),
    hold: () => new Promise<void>((r) => (release = r)),
    releaseHeld: () => release?.(),
    mount: async (i: MountInput): Promise<MountResponse__Output> => {
      calls.push(i);
      const n = calls.length;
      if (fail) {
        fail = false;
        throw new Error('provider down');
      }
      return {
        objectVersion: [{ id: 'a', version: `v${n}` }],
        error: null,
        files: [{ path: 'a', contents: Buffer.from(`value-${n}`), mode: 420 }],
      };
    },
  };
}

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('a rotation within the window takes the last result; after the window it asks the provider', async () => {
  const c = clock();
  const p = fakeProvider();
  let shared = 0;
  const m = new SharedMounts(60_000, () => shared++, c.now);
  await m.mount(input(), ROTATION, p.mount);
  // Another token for the same ServiceAccount, another SecretSync's last-synced versions: the same read.
  const second = await m.mount(input({ token: 't2', synced: 'v9' }), ROTATION, p.mount);
  expect([p.calls.length, second.shared, second.response.objectVersion[0]!.version, shared]).toEqual([
    1,
    true,
    'v1',
    1,
  ]);
  c.advance(60_000);
  const third = await m.mount(input(), ROTATION, p.mount);
  expect([p.calls.length, third.shared, third.response.objectVersion[0]!.version]).toEqual([2, false, 'v2']);
});

test('creates, edits and retries (not a rotation) always ask the provider, and their fresh result is shared after', async () => {
  const c = clock();
  const p = fakeProvider();
  const m = new SharedMounts(60_000, undefined, c.now);
  await m.mount(input(), ROTATION, p.mount);
  const fresh = await m.mount(input(), FRESH, p.mount);
  expect([p.calls.length, fresh.shared, fresh.response.objectVersion[0]!.version]).toEqual([2, false, 'v2']);
  const rotation = await m.mount(input(), ROTATION, p.mount);
  expect(rotation.response.objectVersion[0]!.version).toBe('v2');
  expect(p.calls.length).toBe(2);
});

test('another namespace, ServiceAccount or class parameter is another identity or read: never shared', async () => {
  const p = fakeProvider();
  const m = new SharedMounts(60_000);
  await m.mount(input(), ROTATION, p.mount);
  await m.mount(input({ ns: 'team-b' }), ROTATION, p.mount);
  await m.mount(input({ sa: 'other' }), ROTATION, p.mount);
  await m.mount(input({ objects: 'b' }), ROTATION, p.mount);
  expect(p.calls.length).toBe(4);
  // The provider still receives each caller's own token.
  expect(p.calls.map((c) => c.request.pod.namespace)).toEqual(['team-a', 'team-b', 'team-a', 'team-a']);
});

test('identical rotations at the same moment make one provider call', async () => {
  const p = fakeProvider();
  const m = new SharedMounts(60_000);
  const held = p.hold();
  const slow = async (i: MountInput) => {
    await held;
    return p.mount(i);
  };
  const all = Promise.all(Array.from({ length: 16 }, () => m.mount(input(), ROTATION, slow)));
  p.releaseHeld();
  const results = await all;
  expect(p.calls.length).toBe(1);
  expect(new Set(results.map((r) => r.response.objectVersion[0]!.version))).toEqual(new Set(['v1']));
});

test('a failed read is not kept: the next rotation asks again', async () => {
  const p = fakeProvider();
  const m = new SharedMounts(60_000);
  p.failNext();
  await expect(m.mount(input(), ROTATION, p.mount)).rejects.toThrow('provider down');
  const next = await m.mount(input(), ROTATION, p.mount);
  expect([p.calls.length, next.shared]).toEqual([2, false]);
});

test('window 0 turns sharing off; prune forgets old results', async () => {
  const c = clock();
  const p = fakeProvider();
  const off = new SharedMounts(0, undefined, c.now);
  await off.mount(input(), ROTATION, p.mount);
  await off.mount(input(), ROTATION, p.mount);
  expect(p.calls.length).toBe(2);
  const m = new SharedMounts(10_000, undefined, c.now);
  await m.mount(input(), ROTATION, p.mount);
  await m.mount(input({ ns: 'team-b' }), ROTATION, p.mount);
  // Kept a minute even past a shorter window: the runs of a change notice's burst may take them.
  c.advance(10_001);
  m.prune();
  expect(m.size()).toBe(2);
  c.advance(50_000);
  m.prune();
  expect(m.size()).toBe(0);
});

test('a change-driven run never takes a result whose call started before the notice, in flight or done', async () => {
  const c = clock();
  let shared = 0;
  let calls = 0;
  const m = new SharedMounts(60_000, () => shared++, c.now);
  const answer = (version: string) => async (): Promise<MountResponse__Output> => {
    calls++;
    return { objectVersion: [{ id: 'a', version }], error: null, files: [] };
  };
  // A read started before the notice (it may hold the old version), still in flight when the notice arrives.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const before = m.mount(input(), FRESH, async () => {
    await held;
    return answer('old')();
  });
  const changed: Share = { kind: 'changed', after: m.mark() };
  const first = await m.mount(input({ token: 't2' }), changed, answer('new'));
  release();
  await before;
  // Done now, and a rotation would take it; a change-driven run takes the one started after the notice.
  const second = await m.mount(input(), changed, answer('newer'));
  const rotation = await m.mount(input(), ROTATION, answer('unused'));
  expect([first.shared, first.response.objectVersion[0]!.version]).toEqual([false, 'new']);
  expect([second.shared, second.response.objectVersion[0]!.version]).toEqual([true, 'new']);
  expect(rotation.response.objectVersion[0]!.version).toBe('new');
  expect([calls, shared]).toEqual([2, 2]);
});

test('a burst of change-driven runs after one notice shares one call started after it, in flight or done', async () => {
  const p = fakeProvider();
  const m = new SharedMounts(0);
  await m.mount(input(), FRESH, p.mount); // v1: the old version, read before the notice
  const changed: Share = { kind: 'changed', after: m.mark() };
  const held = p.hold();
  const slow = async (i: MountInput) => {
    await held;
    return p.mount(i);
  };
  const burst = Promise.all(Array.from({ length: 8 }, (_, i) => m.mount(input({ token: `t${i}` }), changed, slow)));
  p.releaseHeld();
  const late = await m.mount(input(), changed, p.mount);
  const results = [...(await burst), late];
  // One read for the burst (sharing works for changes even with the rotation window at 0), none of them v1.
  expect(p.calls.length).toBe(2);
  expect(new Set(results.map((r) => r.response.objectVersion[0]!.version))).toEqual(new Set(['v2']));
  // A later notice wants a newer read again.
  const again = await m.mount(input(), { kind: 'changed', after: m.mark() }, p.mount);
  expect([again.shared, again.response.objectVersion[0]!.version]).toEqual([false, 'v3']);
});
