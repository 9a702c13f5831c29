// Which vaults' reads may be shared until their change events end them (event-coverage.ts): only
// while the change source is receiving, only for a vault an event has come from, and only for a
// read completed since both held.
import { jest } from '@jest/globals';
import { EventCoverage } from '../src/event-coverage.js';

const A = 'a-kv.vault.azure.net';
const B = 'b-kv.vault.azure.net';
const T0 = 1_000_000;

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

test('a vault is covered while the source receives and once an event for it came; from the later of the two', () => {
  const c = new EventCoverage({ maxHosts: 8 });
  c.eventFrom(A);
  expect(c.since(A)).toBeUndefined(); // not receiving
  jest.advanceTimersByTime(1_000);
  c.receiving(true);
  expect(c.since(A)).toBe(T0 + 1_000);
  // A vault whose events never arrive (no subscription for it on this queue) is never covered.
  expect(c.since(B)).toBeUndefined();
  jest.advanceTimersByTime(1_000);
  c.eventFrom(B);
  expect(c.since(B)).toBe(T0 + 2_000);
  // Further events change nothing: covered since the first.
  jest.advanceTimersByTime(1_000);
  c.eventFrom(B);
  c.receiving(true);
  expect(c.since(B)).toBe(T0 + 2_000);
});

test('when the source stops receiving no vault is covered; once it receives again, only from then on', () => {
  const c = new EventCoverage({ maxHosts: 8 });
  c.receiving(true);
  c.eventFrom(A);
  jest.advanceTimersByTime(5_000);
  c.receiving(false);
  expect(c.since(A)).toBeUndefined();
  jest.advanceTimersByTime(5_000);
  c.receiving(true);
  expect(c.since(A)).toBe(T0 + 10_000);
});

test('hosts are bounded, the least recently seen forgotten first; the count is told', () => {
  const counts: number[] = [];
  const c = new EventCoverage({ maxHosts: 2, onCount: (n) => counts.push(n) });
  c.receiving(true);
  c.eventFrom(A);
  c.eventFrom(B);
  c.eventFrom(A); // A seen again: B is now the least recent
  c.eventFrom('c-kv.vault.azure.net');
  expect(c.since(A)).toBeDefined();
  expect(c.since(B)).toBeUndefined();
  expect(counts).toEqual([1, 2, 2, 2]);
});
