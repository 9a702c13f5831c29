// The per-vault budget: a token bucket that refills at its rate, and a concurrency cap.
import { jest } from '@jest/globals';
import { Budgets, Semaphore, TokenBucket } from '../src/budget.js';
import { operationOf } from '../src/pipeline.js';

afterEach(() => {
  jest.useRealTimers();
});

test('the bucket lets a burst through, then one request per 1/rate seconds', async () => {
  jest.useFakeTimers({ now: 0 });
  const bucket = new TokenBucket(10, 2);
  let done = 0;
  for (let i = 0; i < 5; i++) void bucket.take().then(() => done++);
  await Promise.resolve();
  await Promise.resolve();
  expect(done).toBe(2);
  await jest.advanceTimersByTimeAsync(100);
  expect(done).toBe(3);
  await jest.advanceTimersByTimeAsync(200);
  expect(done).toBe(5);
});

test('the semaphore holds the third caller until a slot is released', async () => {
  const slots = new Semaphore(2);
  const a = await slots.acquire();
  await slots.acquire();
  let third = false;
  const pending = slots.acquire().then((release) => {
    third = true;
    return release;
  });
  await new Promise((r) => setImmediate(r));
  expect(third).toBe(false);
  expect(slots.inUse).toBe(2);
  a();
  a(); // a second release of the same slot is ignored
  (await pending)();
  expect(third).toBe(true);
  expect(slots.inUse).toBe(1);
});

test('one identity flooding a vault gets its turn, not the whole bucket: others queued behind it are served alternately', async () => {
  jest.useFakeTimers({ now: 0 });
  const bucket = new TokenBucket(10, 1);
  const order: string[] = [];
  await bucket.take('flood');
  // The flooder queues 50 requests first; a second identity then queues 2.
  for (let i = 0; i < 50; i++) void bucket.take('flood').then(() => order.push('flood'));
  for (let i = 0; i < 2; i++) void bucket.take('victim').then(() => order.push('victim'));
  await jest.advanceTimersByTimeAsync(400);
  expect(order.slice(0, 4)).toEqual(['flood', 'victim', 'flood', 'victim']);
});

test('the semaphore hands freed slots to identities in turn', async () => {
  const slots = new Semaphore(1);
  const first = await slots.acquire('flood');
  const order: string[] = [];
  const all = [
    ...Array.from({ length: 3 }, () => slots.acquire('flood').then((r) => (order.push('flood'), r()))),
    slots.acquire('victim').then((r) => (order.push('victim'), r())),
  ];
  first();
  await Promise.all(all);
  expect(order).toEqual(['flood', 'victim', 'flood', 'flood']);
});

test('a cancelled waiter leaves the queue at once and takes nothing', async () => {
  jest.useFakeTimers({ now: 0 });
  const bucket = new TokenBucket(1, 1);
  await bucket.take('a');
  const ctl = new AbortController();
  const waiting = bucket.take('a', ctl.signal);
  expect(bucket.waiting).toBe(1);
  ctl.abort();
  await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  expect(bucket.waiting).toBe(0);
  const slots = new Semaphore(1);
  await slots.acquire();
  const s = new AbortController();
  const queued = slots.acquire('b', s.signal);
  s.abort();
  await expect(queued).rejects.toBeDefined();
  expect(slots.waiting).toBe(0);
});

test('budgets are bounded: naming many vaults keeps at most maxVaults, dropping idle ones first', async () => {
  const budgets = new Budgets({ ratePerSecond: 10, burst: 10, maxConcurrency: 1, maxVaults: 3 });
  const busy = budgets.for('busy');
  const release = await busy.slots.acquire();
  for (let i = 0; i < 100; i++) budgets.for(`vault${i}`);
  expect(budgets.size).toBeLessThanOrEqual(3);
  expect(budgets.for('busy')).toBe(busy); // in use: kept
  release();
});

test('request paths map to the operation label of the metrics', () => {
  expect(operationOf('https://kv.vault.azure.net/secrets/a/')).toBe('secrets/get');
  expect(operationOf('https://kv.vault.azure.net/secrets/a/0123')).toBe('secrets/get');
  expect(operationOf('https://kv.vault.azure.net/secrets/a/versions?maxresults=25')).toBe('secrets/versions');
  expect(operationOf('https://kv.vault.azure.net/certificates/c/abc')).toBe('certificates/get');
  expect(operationOf('https://kv.vault.azure.net/keys')).toBe('keys/list');
});
