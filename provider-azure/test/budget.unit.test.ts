// The per-vault budget: a token bucket that refills at its rate, and a concurrency cap.
import { jest } from '@jest/globals';
import { Semaphore, TokenBucket } from '../src/budget.js';
import { operationOf } from '../src/vault.js';

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

test('request paths map to the operation label of the metrics', () => {
  expect(operationOf('https://kv.vault.azure.net/secrets/a/')).toBe('secrets/get');
  expect(operationOf('https://kv.vault.azure.net/secrets/a/0123')).toBe('secrets/get');
  expect(operationOf('https://kv.vault.azure.net/secrets/a/versions?maxresults=25')).toBe('secrets/versions');
  expect(operationOf('https://kv.vault.azure.net/certificates/c/abc')).toBe('certificates/get');
  expect(operationOf('https://kv.vault.azure.net/keys')).toBe('keys/list');
});
