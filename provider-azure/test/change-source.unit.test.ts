// The change source (change-source.ts) against a queue held in memory: what a watcher hears, what
// stays in the queue, and how failures show — the behaviour the manager and an operator rely on.
import type { ChangeNotice, ChangeState } from '@secret-store-sync/proto';
import { Backoff } from '../src/backoff.js';
import { changeKey } from '../src/change-keys.js';
import { QueueTokenError, RECEIVE_BATCH, type EventQueue, type QueueMessage } from '../src/change-queue.js';
import { QueueChangeSource } from '../src/change-source.js';
import { EventCoverage } from '../src/event-coverage.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';

const HOST = 'my-kv.vault.azure.net';
const TOPIC = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/my-kv';

function eventText(name: string, o: { id?: string; version?: string; type?: string } = {}): string {
  const version = o.version ?? 'v1';
  return Buffer.from(
    JSON.stringify({
      id: o.id ?? `${name}-${version}`,
      topic: TOPIC,
      subject: name,
      eventType: o.type ?? 'Microsoft.KeyVault.SecretNewVersionCreated',
      eventTime: '2026-12-05T10:00:00Z',
      data: {
        Id: `https://${HOST}/secrets/${name}/${version}`,
        VaultName: 'my-kv',
        ObjectType: 'Secret',
        ObjectName: name,
        Version: version,
        NBF: null,
        EXP: null,
      },
      dataVersion: '1',
      metadataVersion: '1',
    }),
  ).toString('base64');
}

/** A queue in memory: received messages are invisible until deleted (the test never lets them show again). */
class MemoryQueue implements EventQueue {
  visible: QueueMessage[] = [];
  deleted: string[] = [];
  receives = 0;
  failWith: unknown;
  private n = 0;

  send(...texts: string[]): void {
    for (const text of texts) this.visible.push({ messageId: `m${++this.n}`, popReceipt: 'p', text });
  }

  async receive(): Promise<QueueMessage[]> {
    this.receives++;
    await Promise.resolve();
    if (this.failWith) throw this.failWith;
    return this.visible.splice(0, RECEIVE_BATCH);
  }

  async delete(m: QueueMessage): Promise<void> {
    await Promise.resolve();
    this.deleted.push(m.messageId);
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

const sources: QueueChangeSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});

function setup(o: { backoff?: Backoff } = {}) {
  const queue = new MemoryQueue();
  const metrics = createMetrics();
  const invalidated: string[] = [];
  const coverage = new EventCoverage({ maxHosts: 8 });
  const source = new QueueChangeSource({
    queue,
    log: createLogger('error'),
    metrics,
    invalidate: (k) => invalidated.push(k),
    coverage,
    pollIntervalMs: 10,
    names: { queue: 'https://acct.queue.core.windows.net/kv-events', identity: "workload identity 'x'" },
    coalesceMs: 20,
    ...(o.backoff ? { backoff: o.backoff } : {}),
  });
  sources.push(source);
  const notices: ChangeNotice[] = [];
  const states: ChangeState[] = [];
  const watch = () => source.watch({ changed: (n) => notices.push(n), state: (s) => states.push(s) });
  const count = async (result: string) =>
    (await metrics.changeMessages.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  return { queue, metrics, source, notices, states, watch, invalidated, count, coverage };
}

test('nobody watching: the queue is not read, so events wait for the watcher (a non-leader never takes them)', async () => {
  const { queue, source } = setup();
  queue.send(eventText('a'));
  await new Promise((r) => setTimeout(r, 50));
  expect(queue.receives).toBe(0);
  expect(source.current()).toMatchObject({ receiving: false, reason: 'NotWatched' });
});

test('a burst becomes one notice of distinct keys; each message is deleted after it, duplicates and strays too', async () => {
  const { queue, source, notices, states, watch, invalidated, count, coverage } = setup();
  const unwatch = watch();
  // A burst: two objects, a duplicate delivery, an older version after a newer one, foreign messages.
  queue.send(
    eventText('a', { version: 'v2' }),
    eventText('a', { version: 'v2' }),
    eventText('a', { version: 'v1' }),
    eventText('b'),
    'not an event',
    Buffer.from(
      JSON.stringify({ id: '1', eventType: 'Microsoft.Storage.BlobCreated', topic: '/x', data: {} }),
    ).toString('base64'),
  );
  await until(() => queue.deleted.length === 6, 'every message deleted');
  expect(notices).toEqual([{ kind: 'NewVersion', keys: [changeKey(HOST, 'a'), changeKey(HOST, 'b')] }]);
  // The share of the object's current version was dropped before the notice went out.
  expect(new Set(invalidated)).toEqual(new Set([changeKey(HOST, 'a'), changeKey(HOST, 'b')]));
  expect(states[0]).toEqual({ receiving: true });
  expect(source.current()).toEqual({ receiving: true });
  // The vault's events arrive while the queue is read: its reads may be shared until an event ends them.
  expect(coverage.since(HOST)).toBeDefined();
  expect(coverage.since('other-kv.vault.azure.net')).toBeUndefined();
  expect({
    notified: await count('notified'),
    duplicate: await count('duplicate'),
    malformed: await count('malformed'),
    not_keyvault: await count('not_keyvault'),
  }).toEqual({ notified: 3, duplicate: 1, malformed: 1, not_keyvault: 1 });

  // The same event delivered again later is a duplicate: deleted, no notice.
  queue.send(eventText('b'));
  await until(() => queue.deleted.length === 7, 'the redelivery deleted');
  expect(notices).toHaveLength(1);
  unwatch();
  expect(source.current()).toMatchObject({ receiving: false, reason: 'NotWatched' });
  expect(coverage.since(HOST)).toBeUndefined();
});

test('kinds stay apart: a near-expiry event is its own notice', async () => {
  const { queue, notices, watch } = setup();
  watch();
  queue.send(eventText('a'), eventText('c', { type: 'Microsoft.KeyVault.SecretNearExpiry' }));
  await until(() => notices.length === 2, 'two notices');
  expect(notices).toEqual(
    expect.arrayContaining([
      { kind: 'NewVersion', keys: [changeKey(HOST, 'a')] },
      { kind: 'NearExpiry', keys: [changeKey(HOST, 'c')] },
    ]),
  );
});

test('the last watcher gone before the notice: the messages stay in the queue for the next one', async () => {
  const { queue, notices, watch } = setup();
  let unwatch: () => void = () => {};
  const q = queue as MemoryQueue & { receive(): Promise<QueueMessage[]> };
  const real = q.receive.bind(q);
  q.receive = async () => {
    const got = await real();
    unwatch(); // the watcher leaves while the batch is in hand
    return got;
  };
  queue.send(eventText('a'));
  unwatch = watch();
  await until(() => q.receives >= 1, 'a receive');
  await new Promise((r) => setTimeout(r, 50));
  expect(notices).toEqual([]);
  expect(queue.deleted).toEqual([]);
});

test('a failing queue: not receiving with the reason, backed off, and receiving again once it answers', async () => {
  const delays: number[] = [];
  const backoff = new Backoff({ initialMs: 1, maxMs: 4, random: () => 0.5 });
  const next = backoff.next.bind(backoff);
  backoff.next = () => {
    const d = next();
    delays.push(d);
    return d;
  };
  const { queue, source, states, watch, metrics, coverage } = setup({ backoff });
  coverage.eventFrom(HOST);
  queue.failWith = Object.assign(
    new Error('This request is not authorized to perform this operation using this permission.'),
    {
      name: 'RestError',
      statusCode: 403,
      details: { errorCode: 'AuthorizationPermissionMismatch' },
    },
  );
  watch();
  await until(() => delays.length >= 4, 'four failed rounds');
  expect(source.current()).toMatchObject({ receiving: false, reason: 'Forbidden' });
  expect(source.current().message).toContain('Storage Queue Data Message Processor');
  // One state per change, not per failure; the waits double up to the cap.
  expect(states.filter((s) => s.reason === 'Forbidden')).toHaveLength(1);
  expect(delays.slice(0, 4)).toEqual([1, 2, 3, 3]);
  expect((await metrics.changeEventsReceiving.get()).values[0]!.value).toBe(0);
  // Not receiving: no vault's reads rely on events.
  expect(coverage.since(HOST)).toBeUndefined();

  queue.failWith = undefined;
  await until(() => source.current().receiving, 'receiving again');
  expect(states.at(-1)).toEqual({ receiving: true });
  expect((await metrics.changeEventsReceiving.get()).values[0]!.value).toBe(1);
  expect(coverage.since(HOST)).toBeDefined();
});

test.each([
  [{ statusCode: 404, details: { errorCode: 'QueueNotFound' } }, 'QueueNotFound'],
  [{ code: 'ECONNREFUSED' }, 'QueueUnreachable'],
  [{ name: 'AbortError' }, 'QueueUnreachable'],
  [{ statusCode: 401, details: { errorCode: 'InvalidAuthenticationInfo' } }, 'TokenRejected'],
  [{ statusCode: 503, details: { errorCode: 'ServerBusy' } }, 'QueueError'],
  [new QueueTokenError('AADSTS700213: No matching federated identity record found'), 'TokenFailed'],
])('a queue failure %j is reason %s', async (failure, reason) => {
  const { queue, source, watch } = setup({ backoff: new Backoff({ initialMs: 1, maxMs: 1 }) });
  queue.failWith = failure instanceof Error ? failure : Object.assign(new Error('failed'), failure);
  watch();
  await until(() => source.current().reason === reason, reason);
  expect(source.current().message).not.toMatch(/eyJ/);
});

test('close stops reading for good', async () => {
  const { queue, source, watch } = setup();
  watch();
  await until(() => queue.receives > 0, 'a receive');
  await source.close();
  const after = queue.receives;
  watch();
  await new Promise((r) => setTimeout(r, 50));
  expect(queue.receives).toBe(after);
});
