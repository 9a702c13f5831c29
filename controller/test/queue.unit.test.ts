// The work queue: dedup, one worker per key, and the fast lane ahead of rotations.
import { Backoff, WorkQueue } from '../src/queue.js';

test('created or edited SecretSyncs go ahead of queued rotations', async () => {
  const q = new WorkQueue();
  for (let i = 0; i < 1000; i++) q.add(`ns/rotation-${i}`, 'slow');
  q.add('ns/new-one', 'fast');
  expect((await q.get())?.key).toBe('ns/new-one');
  expect((await q.get())?.key).toBe('ns/rotation-0');
});

test('a key is queued once; a fast add promotes a queued rotation', async () => {
  const q = new WorkQueue();
  q.add('ns/a', 'slow');
  q.add('ns/a', 'slow');
  q.add('ns/b', 'slow');
  q.add('ns/b', 'fast');
  expect(q.depth('slow')).toBe(1);
  expect(q.depth('fast')).toBe(1);
  expect((await q.get())?.key).toBe('ns/b');
});

test('a key re-added while a worker has it runs again after done, never twice at once', async () => {
  const q = new WorkQueue();
  q.add('ns/a');
  const first = await q.get();
  q.add('ns/a');
  expect(q.depth('fast')).toBe(0);
  q.done(first!.key);
  expect((await q.get())?.key).toBe('ns/a');
});

test('addAfter keeps the earliest schedule and forget cancels it', async () => {
  const q = new WorkQueue();
  q.addAfter('ns/a', 60_000);
  q.addAfter('ns/a', 10);
  q.addAfter('ns/a', 120_000);
  expect(q.scheduled()).toBe(1);
  const item = await q.get();
  expect(item?.key).toBe('ns/a');
  q.addAfter('ns/b', 10);
  q.forget('ns/b');
  await new Promise((r) => setTimeout(r, 30));
  expect(q.depth('slow')).toBe(0);
  q.close();
  expect(await q.get()).toBeUndefined();
});

test('backoff doubles per failure up to its cap and resets', () => {
  const b = new Backoff(1_000, 8_000);
  const d = [b.next('k'), b.next('k'), b.next('k'), b.next('k'), b.next('k')];
  expect(d[0]).toBeGreaterThanOrEqual(800);
  expect(d[0]).toBeLessThanOrEqual(1_200);
  expect(d[2]).toBeGreaterThanOrEqual(3_200);
  expect(d[4]).toBeLessThanOrEqual(9_600);
  b.reset('k');
  expect(b.next('k')).toBeLessThanOrEqual(1_200);
});
