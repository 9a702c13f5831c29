// The retry and reschedule policy (schedule.ts): what should happen next → the queue calls it makes.
import type { Lane } from '../src/queue.js';
import { schedule, type Next, type Scheduling } from '../src/schedule.js';

const KEY = 'ns/s';
const NOW = Date.UTC(2026, 0, 1);
const MIN = 60_000;

type Call =
  | ['add', Lane, 'rotation' | 'sync']
  | ['addAfter', number, Lane, 'rotation' | 'sync']
  | ['backoff', number | 'default']
  | ['reset'];

interface Env {
  intervalMs?: number;
  expiryCheckMs?: number;
  /** Jitter's random draw: 0.5 is none, 0 is -10 %, 1 is +10 %. */
  random?: number;
}

/** Runs the policy against recording fakes; a backoff step answers its base (or 1 s). */
function calls(next: Next, env: Env = {}): Call[] {
  const out: Call[] = [];
  const kind = (rotation?: boolean) => (rotation ? 'rotation' : 'sync');
  const s: Scheduling = {
    queue: {
      add: (key, lane, rotation) => out.push(['add', lane, kind(rotation)]),
      addAfter: (key, ms, lane, rotation) => out.push(['addAfter', ms, lane, kind(rotation)]),
    },
    backoff: {
      next: (key, baseMs) => (out.push(['backoff', baseMs ?? 'default']), baseMs ?? 1_000),
      reset: () => out.push(['reset']),
    },
    intervalMs: env.intervalMs ?? 10 * MIN,
    expiryCheckMs: () => env.expiryCheckMs,
    now: () => NOW,
    random: () => env.random ?? 0.5,
  };
  schedule(KEY, next, s);
  return out;
}

const synced: Next = { kind: 'synced' };

test.each<[string, Next, Env, Call[]]>([
  ['nothing: no queue call', { kind: 'nothing' }, {}, []],
  ['created or edited: now, fast lane, a sync', { kind: 'syncNow' }, {}, [['add', 'fast', 'sync']]],
  [
    'synced: failures forgiven, rotation one interval away',
    synced,
    {},
    [['reset'], ['addAfter', 10 * MIN, 'slow', 'rotation']],
  ],
  ['synced: jitter -10 %', synced, { random: 0 }, [['reset'], ['addAfter', 9 * MIN, 'slow', 'rotation']]],
  ['synced: jitter +10 %', synced, { random: 1 }, [['reset'], ['addAfter', 11 * MIN, 'slow', 'rotation']]],
  [
    'synced: an expiry check before the rotation runs first',
    synced,
    { expiryCheckMs: MIN },
    [['reset'], ['addAfter', MIN, 'slow', 'rotation']],
  ],
  [
    'synced: an expiry check after the rotation waits for it',
    synced,
    { expiryCheckMs: 20 * MIN },
    [['reset'], ['addAfter', 10 * MIN, 'slow', 'rotation']],
  ],
  ['synced, rotation off: nothing scheduled', synced, { intervalMs: 0 }, [['reset']]],
  [
    'synced, rotation off: expiry checks still run',
    synced,
    { intervalMs: 0, expiryCheckMs: 20 * MIN },
    [['reset'], ['addAfter', 20 * MIN, 'slow', 'rotation']],
  ],
  [
    'up to date: the rotation keeps its time, failures are not forgiven',
    { kind: 'rotate', lastSyncAt: NOW - 4 * MIN },
    {},
    [['addAfter', 6 * MIN, 'slow', 'rotation']],
  ],
  [
    'up to date, synced longer than an interval ago: at once',
    { kind: 'rotate', lastSyncAt: NOW - 60 * MIN },
    {},
    [['addAfter', 0, 'slow', 'rotation']],
  ],
  [
    'up to date, a sync time in the future (clock ahead) counts as now',
    { kind: 'rotate', lastSyncAt: NOW + 60 * MIN },
    {},
    [['addAfter', 10 * MIN, 'slow', 'rotation']],
  ],
  [
    'up to date: an expiry check before the rotation runs first',
    { kind: 'rotate', lastSyncAt: NOW - 4 * MIN },
    { expiryCheckMs: MIN },
    [['addAfter', MIN, 'slow', 'rotation']],
  ],
  ['up to date, rotation off, no expiry ahead: nothing', { kind: 'rotate', lastSyncAt: NOW }, { intervalMs: 0 }, []],
  [
    'expiry check met a newer status: again, as a re-check',
    { kind: 'recheck', afterMs: 5_000 },
    {},
    [['addAfter', 5_000, 'slow', 'rotation']],
  ],
  [
    'failed, transient: backoff from 1 s, slow lane, a sync',
    { kind: 'backoff', retry: 'backoff' },
    {},
    [
      ['backoff', 1_000],
      ['addAfter', 1_000, 'slow', 'sync'],
    ],
  ],
  [
    'failed, needs a change: backoff from 5 s, slow lane, a sync',
    { kind: 'backoff', retry: 'slow' },
    {},
    [
      ['backoff', 5_000],
      ['addAfter', 5_000, 'slow', 'sync'],
    ],
  ],
  [
    'status write failed: backoff from its default, fast lane, a sync',
    { kind: 'statusWriteFailed' },
    {},
    [
      ['backoff', 'default'],
      ['addAfter', 1_000, 'fast', 'sync'],
    ],
  ],
])('%s', (_name, next, env, expected) => {
  expect(calls(next, env)).toEqual(expected);
});
