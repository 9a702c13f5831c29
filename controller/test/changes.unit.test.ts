// The manager's change-notice streams (changes.ts) over a fake provider and a fake clock: watched
// only between start (leading) and stop (stepping down, shutdown); reopened with exponential
// backoff and jitter, never in a storm; a provider without the service is polled only, said once;
// each change of the stream or of the provider's state is logged, with the provider's reason.
import { jest } from '@jest/globals';
import type { ChangeNotice, WatchChangesOptions } from '@secret-store-sync/proto';
import { ChangeStreams, STREAM_TIMING } from '../src/changes.js';
import type { Logger } from '../src/log.js';
import { CHANGE_LOGS } from '../src/messages.js';
import { createMetrics } from '../src/metrics.js';

interface Call {
  provider: string;
  at: number;
  opts: WatchChangesOptions;
  resolve(): void;
  reject(e: unknown): void;
}

const UNAVAILABLE = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 });
const UNIMPLEMENTED = Object.assign(new Error('12 UNIMPLEMENTED: unknown service'), { code: 12 });

function setup(onCall: (c: Call) => void = () => undefined) {
  const calls: Call[] = [];
  const notices: [string, ChangeNotice][] = [];
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown>) =>
    lines.push({ level, message, fields });
  const log = { info: at('info'), warn: at('warn'), debug: at('debug'), error: at('error') } as unknown as Logger;
  const metrics = createMetrics();
  const streams = new ChangeStreams({
    watch: (provider, opts) =>
      new Promise<void>((resolve, reject) => {
        // As ProviderClient.watchChanges: aborting ends the stream and resolves.
        opts.signal.addEventListener('abort', () => resolve(), { once: true });
        const call = { provider, at: Date.now(), opts, resolve, reject };
        calls.push(call);
        onCall(call);
      }),
    onChanged: (provider, notice) => notices.push([provider, notice]),
    log,
    metrics,
    now: () => Date.now(),
  });
  const gauge = async (g: 'changeStreamUp' | 'changeSourceReceiving', provider: string) =>
    (await metrics[g].get()).values.find((v) => v.labels.provider === provider)?.value;
  return { calls, notices, lines, metrics, streams, gauge };
}

beforeEach(() => jest.useFakeTimers({ now: 0 }));
afterEach(() => jest.useRealTimers());

test('nothing is watched before start (not leading); each provider once leading; nothing after stop', async () => {
  const t = setup();
  await jest.advanceTimersByTimeAsync(120_000);
  t.streams.appeared('azure'); // a socket appearing while not leading opens nothing
  expect(t.calls).toHaveLength(0);

  t.streams.start(['azure', 'vault']);
  expect(t.calls.map((c) => c.provider)).toEqual(['azure', 'vault']);
  t.calls[0]!.opts.onState({ receiving: true });
  expect(await t.gauge('changeStreamUp', 'azure')).toBe(1);
  expect(await t.gauge('changeStreamUp', 'vault')).toBe(0);

  t.streams.stop();
  expect(t.calls.every((c) => c.opts.signal.aborted)).toBe(true);
  expect(await t.gauge('changeStreamUp', 'azure')).toBe(0);
  t.streams.appeared('azure');
  await jest.advanceTimersByTimeAsync(600_000);
  expect(t.calls).toHaveLength(2);
});

test('a failing stream is reopened with backoff from 1 s doubling to 60 s (±20 %), never in a storm', async () => {
  const t = setup((c) => c.reject(UNAVAILABLE));
  t.streams.start(['azure']);
  await jest.advanceTimersByTimeAsync(10 * 60_000);
  const gaps = t.calls.slice(1).map((c, i) => c.at - t.calls[i]!.at);
  gaps.forEach((gap, i) => {
    const expected = Math.min(60_000, 1_000 * 2 ** i);
    expect(gap).toBeGreaterThanOrEqual(expected * 0.8);
    expect(gap).toBeLessThanOrEqual(expected * 1.2);
  });
  // 1+2+4+8+16+32 s, then about one a minute.
  expect(t.calls.length).toBeGreaterThanOrEqual(12);
  expect(t.calls.length).toBeLessThanOrEqual(17);
  // Said once at warn; the repeats go to debug.
  const ended = t.lines.filter((l) => l.message === CHANGE_LOGS.streamEnded);
  expect(ended.filter((l) => l.level === 'warn')).toHaveLength(1);
  expect(ended[0]!.fields).toMatchObject({ provider: 'azure', code: 'UNAVAILABLE' });
});

test('a stream that was up a while retries from 1 s when it breaks (a provider restart), and then works', async () => {
  const t = setup();
  t.streams.start(['azure']);
  // Three quick failures first: the backoff has grown to 8 s.
  for (let i = 0; i < 3; i++) {
    t.calls.at(-1)!.reject(UNAVAILABLE);
    await jest.advanceTimersByTimeAsync(10_000);
  }
  expect(t.calls).toHaveLength(4);
  t.calls[3]!.opts.onState({ receiving: true });
  await jest.advanceTimersByTimeAsync(STREAM_TIMING.stableMs);
  t.calls[3]!.reject(UNAVAILABLE);
  await jest.advanceTimersByTimeAsync(1_200);
  expect(t.calls).toHaveLength(5);
  t.calls[4]!.opts.onState({ receiving: true });
  t.calls[4]!.opts.onChanged({ keys: ['k1'], kind: 'NewVersion' });
  expect(t.notices).toEqual([['azure', { keys: ['k1'], kind: 'NewVersion' }]]);
  expect(await t.gauge('changeStreamUp', 'azure')).toBe(1);
  const opened = t.lines.filter((l) => l.message === CHANGE_LOGS.streamOpen && l.level === 'info');
  expect(opened).toHaveLength(2);
});

test('a provider socket made anew reopens a stream waiting for its retry at once', async () => {
  const t = setup((c) => c.reject(UNAVAILABLE));
  t.streams.start(['azure']);
  for (let i = 0; i < 5; i++) await jest.advanceTimersByTimeAsync(Math.min(60_000, 1_000 * 2 ** i) * 1.2);
  const before = t.calls.length;
  t.streams.appeared('azure');
  expect(t.calls.length).toBe(before + 1);
});

test('UNIMPLEMENTED: polled only, said once; asked again after minutes or when its socket is made anew', async () => {
  const t = setup((c) => c.reject(UNIMPLEMENTED));
  t.streams.start(['plain']);
  await jest.advanceTimersByTimeAsync(STREAM_TIMING.unimplementedMs - 1_000);
  expect(t.calls).toHaveLength(1);
  await jest.advanceTimersByTimeAsync(2_000);
  expect(t.calls).toHaveLength(2);
  t.streams.appeared('plain');
  expect(t.calls).toHaveLength(3);
  await jest.advanceTimersByTimeAsync(0);
  const said = t.lines.filter((l) => l.message === CHANGE_LOGS.unsupported);
  expect(said.map((l) => l.level)).toEqual(['info', 'debug', 'debug']);
  expect(await t.gauge('changeStreamUp', 'plain')).toBe(0);
});

test('a stream that sends no State is not up: it is ended and retried', async () => {
  const t = setup();
  t.streams.start(['mute']);
  await jest.advanceTimersByTimeAsync(STREAM_TIMING.firstStateMs);
  expect(t.calls[0]!.opts.signal.aborted).toBe(true);
  await jest.advanceTimersByTimeAsync(1_200);
  expect(t.calls).toHaveLength(2);
  expect(await t.gauge('changeStreamUp', 'mute')).toBe(0);
  expect(t.lines.find((l) => l.message === CHANGE_LOGS.streamEnded)?.fields).toMatchObject({ code: 'NoState' });
});

test("each change of the provider's state is logged once with its reason; the receiving gauge follows", async () => {
  const t = setup();
  t.streams.start(['azure']);
  const s = t.calls[0]!.opts;
  s.onState({ receiving: false, reason: 'QueueUnreachable', message: 'connect ECONNREFUSED ' + 'x'.repeat(1000) });
  expect(await t.gauge('changeSourceReceiving', 'azure')).toBe(0);
  s.onState({ receiving: false, reason: 'QueueUnreachable', message: 'again' });
  s.onState({ receiving: true });
  expect(await t.gauge('changeSourceReceiving', 'azure')).toBe(1);
  // A long advice, as provider-azure's Forbidden text is, arrives whole.
  const advice = `the storage queue https://${'a'.repeat(24)}.queue.core.windows.net/kv-events refused ${'i'.repeat(200)}: (role assignments can take minutes to apply)`;
  s.onState({ receiving: false, reason: 'Forbidden', message: advice });
  s.onState({ receiving: true });
  const states = t.lines.filter((l) => l.message === CHANGE_LOGS.receiving || l.message === CHANGE_LOGS.notReceiving);
  expect(states.map((l) => [l.level, l.fields.reason])).toEqual([
    ['warn', 'QueueUnreachable'],
    ['info', undefined],
    ['warn', 'Forbidden'],
    ['info', undefined],
  ]);
  expect(states[2]!.fields.providerMessage).toBe(advice);
  expect(String(states[0]!.fields.providerMessage).length).toBe(512);
  // The stream ending takes the provider's state with it.
  t.calls[0]!.reject(UNAVAILABLE);
  await jest.advanceTimersByTimeAsync(0);
  expect(await t.gauge('changeSourceReceiving', 'azure')).toBe(0);
});
