// The Event recorder's bounds (Events are not awaited by the sync, so a slow apiserver must not make
// them pile up without limit) and its aggregation of repeats, as client-go's EventCorrelator.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { SecretSync } from '../src/api.js';
import { EventRecorder } from '../src/events.js';
import type { Logger } from '../src/log.js';
import type { Text } from '../src/messages.js';

/** An apiserver whose Event creates answer only when told to, in order. */
function slowApiserver() {
  const pending: { body: { reason?: string; involvedObject: { name?: string } }; done: () => void }[] = [];
  const written: string[] = [];
  const core = {
    createNamespacedEvent: ({ body }: { body: { reason?: string; involvedObject: { name?: string } } }) =>
      new Promise<void>((resolve) =>
        pending.push({ body, done: () => (written.push(`${body.involvedObject.name}:${body.reason}`), resolve()) }),
      ),
  } as unknown as CoreV1Api;
  const answerOne = async () => {
    pending.shift()!.done();
    await flush(); // let the recorder send the next
  };
  return { core, pending, written, answerOne };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
const warnings: string[] = [];
const log = {
  warn: (m: string) => warnings.push(m),
  info: () => {},
  debug: () => {},
  error: () => {},
} as unknown as Logger;
/** Any text: the recorder's bounds do not depend on it. */
const note = (s: string) => s as Text;
const ss = (name: string) => ({ metadata: { name, namespace: 'n', uid: `u-${name}` } }) as SecretSync;

test('at most inFlight Events go to the apiserver at once; the rest wait their turn, in order', async () => {
  const api = slowApiserver();
  const rec = new EventRecorder(api.core, { instance: 'pod', log, limits: { inFlight: 2, queued: 10 } });
  for (let i = 0; i < 5; i++) rec.record(ss(`s${i}`), 'Normal', 'CreateSucceeded', note('ok'));
  await flush();
  expect(api.pending).toHaveLength(2);
  while (api.pending.length) await api.answerOne();
  expect(api.written).toEqual(['s0', 's1', 's2', 's3', 's4'].map((n) => `${n}:CreateSucceeded`));
});

test('beyond the queue, Events are dropped and counted, with one warning per episode', async () => {
  warnings.length = 0;
  const api = slowApiserver();
  let dropped = 0;
  const rec = new EventRecorder(api.core, {
    instance: 'pod',
    log,
    onDropped: () => dropped++,
    limits: { inFlight: 1, queued: 2 },
  });
  for (let i = 0; i < 6; i++) rec.record(ss(`s${i}`), 'Warning', 'UpdateFailedProviderError', note('failed'));
  expect(dropped).toBe(3);
  expect(warnings.filter((w) => w.startsWith('dropping Events'))).toHaveLength(1);
  await flush();
  while (api.pending.length) await api.answerOne();
  expect(api.written).toEqual(['s0', 's1', 's2'].map((n) => `${n}:UpdateFailedProviderError`));
  // Drained: the next Event goes out, and a new episode warns again.
  for (let i = 6; i < 10; i++) rec.record(ss(`s${i}`), 'Warning', 'UpdateFailedProviderError', note('failed'));
  expect(dropped).toBe(4);
  expect(warnings.filter((w) => w.startsWith('dropping Events'))).toHaveLength(2);
});

test('a failed Event frees its slot for the next one', async () => {
  const core = { createNamespacedEvent: () => Promise.reject(new Error('forbidden')) } as unknown as CoreV1Api;
  let sent = 0;
  const counting = {
    createNamespacedEvent: (...a: unknown[]) => (
      sent++,
      (core.createNamespacedEvent as (...x: unknown[]) => Promise<unknown>)(...a)
    ),
  } as unknown as CoreV1Api;
  const rec = new EventRecorder(counting, { instance: 'pod', log, limits: { inFlight: 1, queued: 5 } });
  for (let i = 0; i < 4; i++) rec.record(ss(`s${i}`), 'Normal', 'CreateSucceeded', note('ok'));
  await flush();
  await flush();
  expect(sent).toBe(4);
});

/** Until the apiserver has answered `n` calls in all. */
const drained = async (calls: string[], n: number) => {
  while (calls.length < n) await new Promise((r) => setImmediate(r));
};

/** An apiserver's Events, by name: create refuses a name taken (409), patch one missing (404). */
function eventStore() {
  const events = new Map<string, { reason?: string; message?: string; count?: number; lastTimestamp?: Date }>();
  const calls: string[] = [];
  let held: (() => void)[] | undefined;
  const gate = () => (held ? new Promise<void>((r) => held!.push(r)) : Promise.resolve());
  const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });
  type Body = { metadata: { name: string }; reason?: string; message?: string; count?: number; lastTimestamp?: Date };
  const core = {
    createNamespacedEvent: async ({ body }: { body: Body }) => {
      await gate();
      calls.push(`create ${body.reason} x${body.count}`);
      if (events.has(body.metadata.name)) throw apiError(409);
      events.set(body.metadata.name, { ...body });
    },
    patchNamespacedEvent: async ({ name, body }: { name: string; body: { count: number; lastTimestamp: Date } }) => {
      await gate();
      calls.push(`patch x${body.count}`);
      const e = events.get(name);
      if (!e) throw apiError(404);
      Object.assign(e, body);
    },
  } as unknown as CoreV1Api;
  return {
    core,
    events,
    calls,
    hold: () => (held = []),
    release: () => {
      const h = held ?? [];
      held = undefined;
      h.forEach((r) => r());
    },
  };
}

test('a repeated Event patches the first one: its count and lastTimestamp rise, nothing new is created', async () => {
  const api = eventStore();
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const rec = new EventRecorder(api.core, { instance: 'pod', log, now: () => new Date((clock += 5_000)) });
  for (let i = 0; i < 4; i++) {
    rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('provider down'));
    await flush();
  }
  expect(api.calls).toEqual(['create UpdateFailedProviderError x1', 'patch x2', 'patch x3', 'patch x4']);
  expect([...api.events.values()]).toEqual([
    expect.objectContaining({ count: 4, lastTimestamp: new Date('2026-01-01T00:00:20Z') }),
  ]);
  // Another message, reason, type or object is another Event.
  rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('provider refused'));
  rec.record(ss('db'), 'Warning', 'ControllerSpcError', note('provider down'));
  rec.record(ss('db'), 'Normal', 'UpdateFailedProviderError', note('provider down'));
  rec.record(ss('other'), 'Warning', 'UpdateFailedProviderError', note('provider down'));
  await flush();
  expect(api.events.size).toBe(5);
});

test('repeats while the Event is being written are one write of the total count', async () => {
  const api = eventStore();
  const rec = new EventRecorder(api.core, { instance: 'pod', log });
  api.hold();
  rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await flush();
  for (let i = 0; i < 2; i++) rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await flush();
  api.release();
  await flush();
  expect(api.calls).toEqual(['create UpdateFailedProviderError x1', 'patch x3']);
  expect([...api.events.values()][0]!.count).toBe(3);
});

test('an Event deleted meanwhile (its TTL passed) is created anew, with the count so far', async () => {
  const api = eventStore();
  const rec = new EventRecorder(api.core, { instance: 'pod', log });
  rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await flush();
  api.events.clear();
  rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await flush();
  expect(api.calls).toEqual(['create UpdateFailedProviderError x1', 'patch x2', 'create UpdateFailedProviderError x2']);
  expect([...api.events.values()]).toEqual([expect.objectContaining({ count: 2 })]);
  rec.record(ss('db'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await flush();
  expect([...api.events.values()]).toEqual([expect.objectContaining({ count: 3 })]);
});

test('the correlation cache is bounded in total and per namespace; forgetting costs only a new Event', async () => {
  const api = eventStore();
  const limits = { cached: 10, cachedPerNamespace: 4 };
  const rec = new EventRecorder(api.core, { instance: 'pod', log, limits });
  const inNs = (ns: string, name: string) =>
    ({ metadata: { name, namespace: ns, uid: `u-${ns}-${name}` } }) as SecretSync;
  // Namespace b's Events, then a flood from namespace a: a evicts only its own entries.
  for (let i = 0; i < 3; i++) rec.record(inNs('b', `s${i}`), 'Warning', 'UpdateFailedProviderError', note('down'));
  for (let i = 0; i < 1_000; i++) rec.record(inNs('a', `s${i}`), 'Warning', 'UpdateFailedProviderError', note('down'));
  await drained(api.calls, 1_003);
  expect(rec.cached).toBe(7);
  /** The writes that repeating these Events makes: a patch if still cached, else a create. */
  const repeat = async (...objects: SecretSync[]) => {
    api.calls.length = 0;
    for (const o of objects) rec.record(o, 'Warning', 'UpdateFailedProviderError', note('down'));
    await flush();
    return api.calls;
  };
  expect(await repeat(inNs('b', 's0'), inNs('a', 's999'))).toEqual(['patch x2', 'patch x2']);
  // Many namespaces: the total holds, least recently used first out.
  for (let n = 0; n < 100; n++) rec.record(inNs(`t${n}`, 's'), 'Warning', 'UpdateFailedProviderError', note('down'));
  await drained(api.calls, 102);
  expect(rec.cached).toBe(10);
  expect(await repeat(inNs('b', 's0'), inNs('t99', 's'))).toEqual(['create UpdateFailedProviderError x1', 'patch x2']);
});
