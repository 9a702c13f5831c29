// Shared reads (read-share.ts, vault.ts): a burst of Mounts of one object by one identity costs one
// read of its current version within --read-share-seconds, or within --read-share-seconds-with-events
// for a read completed while the vault's events were received; another identity reads for itself; a
// change event ends either window, and a read in flight when it came is not kept.
import { jest } from '@jest/globals';
import { changeKey } from '../src/change-keys.js';
import { ReadShare } from '../src/read-share.js';

const ck = changeKey('kv.vault.azure.net', 'db');
const share = (shareMs = 2_000, eventsShareMs = shareMs) =>
  new ReadShare({ shareMs, eventsShareMs, readTimeoutMs: 20_000, maxWeight: 10 });

afterEach(() => jest.useRealTimers());

test('a completed read answers the same read within the window, then no more', () => {
  jest.useFakeTimers({ now: 1_000_000 });
  const s = share();
  const g = s.generation(ck);
  s.set({ key: 'id-a|kv|secret|db|', changeKey: ck, generation: g, value: 'v1', weight: 1 });
  expect(s.get('id-a|kv|secret|db|', g)).toBe('v1');
  // Another identity's read is its own key: never answered from identity a's.
  expect(s.get('id-b|kv|secret|db|', g)).toBeUndefined();
  jest.advanceTimersByTime(2_001);
  expect(s.get('id-a|kv|secret|db|', g)).toBeUndefined();
});

test('a change ends the window, and a read that started before it is not kept', () => {
  const s = share();
  const before = s.generation(ck);
  s.set({ key: 'k', changeKey: ck, generation: before, value: 'v1', weight: 1 });
  s.changed(ck);
  const after = s.generation(ck);
  expect(after).not.toBe(before);
  expect(s.get('k', after)).toBeUndefined();
  // The read in flight when the event came completes now: not shared.
  s.set({ key: 'k', changeKey: ck, generation: before, value: 'v1', weight: 1 });
  expect(s.get('k', s.generation(ck))).toBeUndefined();
  // Another object's reads are untouched by it.
  const other = changeKey('kv.vault.azure.net', 'other');
  s.set({ key: 'o', changeKey: other, generation: s.generation(other), value: 'w1', weight: 1 });
  s.changed(ck);
  expect(s.get('o', s.generation(other))).toBe('w1');
});

test('0 s shares nothing, and what is kept is bounded by weight, oldest dropped first', () => {
  const off = share(0);
  off.set({ key: 'k', changeKey: ck, generation: 0, value: 'v', weight: 1 });
  expect(off.get('k', 0)).toBeUndefined();
  const s = share();
  for (let i = 0; i < 12; i++) s.set({ key: `k${i}`, changeKey: ck, generation: 0, value: i, weight: 1 });
  expect(s.get('k0', 0)).toBeUndefined();
  expect(s.get('k11', 0)).toBe(11);
  s.set({ key: 'huge', changeKey: ck, generation: 0, value: [], weight: 11 });
  expect(s.get('huge', 0)).toBeUndefined();
});

describe('the window with events (--read-share-seconds-with-events)', () => {
  const T0 = 1_000_000;
  beforeEach(() => jest.useFakeTimers({ now: T0 }));

  test('a read completed while its vault is covered is shared up to the long window; uncovered, the short one', () => {
    const s = share(2_000, 60_000);
    s.set({ key: 'k', changeKey: ck, generation: 0, value: 'v1', weight: 1 });
    jest.advanceTimersByTime(30_000);
    // Events received for the vault since before the read: until its event, or 60 s.
    expect(s.get('k', 0, T0)).toBe('v1');
    // Not receiving, or no event ever came for this vault: the short window, long past.
    expect(s.get('k', 0, undefined)).toBeUndefined();
    jest.advanceTimersByTime(30_001);
    expect(s.get('k', 0, T0)).toBeUndefined();
  });

  test('a read completed before events were received again keeps the short window', () => {
    const s = share(2_000, 60_000);
    s.set({ key: 'k', changeKey: ck, generation: 0, value: 'v1', weight: 1 });
    jest.advanceTimersByTime(5_000);
    // The change source came back at T0 + 1 s: a write in between may still have its event in the queue.
    expect(s.get('k', 0, T0 + 1_000)).toBeUndefined();
  });

  test('the short window at 0 shares nothing uncovered, while a covered vault still shares', () => {
    const s = share(0, 60_000);
    s.set({ key: 'k', changeKey: ck, generation: 0, value: 'v1', weight: 1 });
    expect(s.get('k', 0, undefined)).toBeUndefined();
    jest.advanceTimersByTime(10_000);
    expect(s.get('k', 0, T0)).toBe('v1');
  });

  test("the object's change event ends the long window, and is remembered as long as it lasts", () => {
    const s = share(2_000, 60_000);
    s.set({ key: 'k', changeKey: ck, generation: s.generation(ck), value: 'v1', weight: 1 });
    jest.advanceTimersByTime(1_000);
    s.changed(ck);
    expect(s.get('k', s.generation(ck), T0)).toBeUndefined();
    // Past the read deadline (20 s) but within the long window: were the change forgotten, the
    // object's generation would be 0 again and the read from before the event would be served.
    jest.advanceTimersByTime(30_000);
    s.changed(changeKey('kv.vault.azure.net', 'other')); // forgets changes past their time
    expect(s.generation(ck)).not.toBe(0);
    expect(s.get('k', s.generation(ck), T0)).toBeUndefined();
  });
});
