// The Event recorder's bounds: Events are not awaited by the sync, so a slow apiserver must not make
// them pile up without limit.
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
