// The change queue's retry pace (backoff.ts): from 1 s doubling to 60 s, each wait in the upper
// half of its step (jitter), and back to 1 s after a success — never a storm, never stuck long.
import { Backoff, sleep } from '../src/backoff.js';

test('waits double from the first step to the cap, jittered within the upper half, and reset after a success', () => {
  const steps = (random: () => number) => {
    const b = new Backoff({ initialMs: 1_000, maxMs: 60_000, random });
    return Array.from({ length: 9 }, () => b.next());
  };
  expect(steps(() => 0)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  expect(steps(() => 0.999999)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  const b = new Backoff({ initialMs: 1_000, maxMs: 60_000, random: () => 0.999999 });
  for (let i = 0; i < 100; i++) b.next();
  expect(b.next()).toBe(60_000);
  b.reset();
  expect(b.next()).toBe(1_000);
});

test('sleep ends early when its signal aborts', async () => {
  const ctl = new AbortController();
  const started = Date.now();
  const slept = sleep(60_000, ctl.signal);
  ctl.abort();
  await slept;
  expect(Date.now() - started).toBeLessThan(30_000);
});
