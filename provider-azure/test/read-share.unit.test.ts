// Shared reads (read-share.ts, vault.ts): a burst of Mounts of one object by one identity costs one
// read of its current version within --read-share-seconds; another identity reads for itself; a
// change event ends the window, and a read in flight when it came is not kept.
import { jest } from '@jest/globals';
import { changeKey } from '../src/change-keys.js';
import { ReadShare } from '../src/read-share.js';

const ck = changeKey('kv.vault.azure.net', 'db');
const share = (shareMs = 2_000) => new ReadShare({ shareMs, readTimeoutMs: 20_000, maxWeight: 10 });

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
