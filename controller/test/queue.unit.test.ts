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

/** Takes `n` keys as `n` workers would (without finishing them). */
async function takeN(q: WorkQueue, n: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push((await q.get())!.key);
  return keys;
}

test('namespaces take turns within a lane; each keeps its own order', async () => {
  const q = new WorkQueue(undefined, 5);
  for (let i = 0; i < 100; i++) q.add(`flood/s-${i}`);
  q.add('quiet/one');
  q.add('other/one');
  q.add('other/two');
  expect(await takeN(q, 6)).toEqual(['flood/s-0', 'quiet/one', 'other/one', 'flood/s-1', 'other/two', 'flood/s-2']);
});

test('alone, a namespace uses every worker; once another waits, it gets no worker past its share', async () => {
  const q = new WorkQueue(undefined, 5);
  for (let i = 0; i < 100; i++) q.add(`hang/s-${i}`);
  // Ten workers, nothing else queued: all ten go to it (no worker idles for fairness' sake).
  const held = await takeN(q, 10);
  expect(held.every((k) => k.startsWith('hang/'))).toBe(true);
  q.add('other/a');
  q.add('other/b');
  q.done(held[0]!);
  expect((await q.get())?.key).toBe('other/a');
  q.done(held[1]!);
  expect((await q.get())?.key).toBe('other/b');
  // Nothing else waits: it may take a freed worker again, although above its share.
  q.done(held[2]!);
  expect((await q.get())?.key).toBe('hang/s-10');
});

test("the share holds across lanes: a namespace at its share of edits does not hold back another one's rotations", async () => {
  const q = new WorkQueue(undefined, 5);
  for (let i = 0; i < 100; i++) q.add(`busy/s-${i}`, 'fast');
  for (let i = 0; i < 100; i++) q.add(`calm/s-${i}`, 'slow');
  const keys = await takeN(q, 10);
  expect(keys.filter((k) => k.startsWith('busy/'))).toHaveLength(5);
  expect(keys.filter((k) => k.startsWith('calm/'))).toHaveLength(5);
  // A worker freed by the capped namespace goes back to its fast lane first.
  q.done(keys[0]!);
  expect((await q.get())?.key).toBe('busy/s-5');
});

test('a key finished, re-added or forgotten keeps the counts right: the cap lifts when its workers finish', async () => {
  const q = new WorkQueue(undefined, 2);
  q.add('a/1');
  q.add('a/2');
  q.add('a/3');
  q.add('b/1');
  const [first, second] = await takeN(q, 2);
  expect([first, second]).toEqual(['a/1', 'b/1']);
  expect((await q.get())?.key).toBe('a/2');
  // a holds 2 (its cap) and b has nothing queued: a/3 may still go.
  q.add('b/2');
  q.forget('b/2');
  expect((await q.get())?.key).toBe('a/3');
  q.add('a/4');
  q.add('b/3');
  q.add('a/1'); // in flight: runs again after done, not now
  expect((await q.get())?.key).toBe('b/3');
  q.done('a/1');
  q.done('a/2');
  q.done('a/3');
  expect(await takeN(q, 2)).toEqual(['a/4', 'a/1']);
  expect(q.depth('fast')).toBe(0);
});

test('a rotation travels with its item; any add that is not one makes the merged item a sync', async () => {
  const q = new WorkQueue();
  q.add('ns/rotating', 'slow', true);
  q.add('ns/rotating', 'slow', true);
  q.add('ns/retried', 'slow', true);
  q.add('ns/retried', 'slow');
  q.add('ns/edited', 'slow', true);
  q.add('ns/edited', 'fast');
  const items = [await q.get(), await q.get(), await q.get()].map((i) => [i!.key, i!.lane, i!.rotation]);
  expect(items).toEqual([
    ['ns/edited', 'fast', false],
    ['ns/rotating', 'slow', true],
    ['ns/retried', 'slow', false],
  ]);
  // Re-added while in flight: the same merge.
  q.add('ns/rotating', 'slow', true);
  q.done('ns/rotating');
  expect(await q.get()).toMatchObject({ key: 'ns/rotating', lane: 'slow', rotation: true });
  q.add('ns/rotating', 'slow', true);
  q.add('ns/rotating', 'slow');
  q.done('ns/rotating');
  expect(await q.get()).toMatchObject({ key: 'ns/rotating', lane: 'slow', rotation: false });
  q.addAfter('ns/later', 10, 'slow', true);
  expect(await q.get()).toMatchObject({ key: 'ns/later', rotation: true });
  q.close();
});
