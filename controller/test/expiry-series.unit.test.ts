// The expiry series caps: per SecretSync and in all, the soonest expiries kept, the rest counted.
import { parseConfig, type Config } from '../src/config.js';
import { ExpirySeries } from '../src/expiry-series.js';
import { createMetrics } from '../src/metrics.js';

const at = (seconds: number) => new Date(seconds * 1000);
const objects = (...seconds: number[]) => Object.fromEntries(seconds.map((s) => [`secret/o${s}`, at(s)]));

function setup(perSecretSync: number, total: number) {
  const m = createMetrics();
  const series = new ExpirySeries(m.objectExpiry, m.expirySeriesDropped, { perSecretSync, total });
  const exported = async () =>
    (await m.objectExpiry.get()).values
      .map((v) => `${v.labels.namespace}/${v.labels.secretsync} ${v.labels.object} ${v.value}`)
      .sort();
  const dropped = async () =>
    Object.fromEntries((await m.expirySeriesDropped.get()).values.map((v) => [v.labels.reason, v.value]));
  return { series, exported, dropped };
}

test('a SecretSync listing more objects than its cap exports its soonest expiries and counts the rest', async () => {
  const { series, exported, dropped } = setup(2, 100);
  expect(series.set('ns', 'many', objects(500, 100, 300, 200, 400))).toEqual({ per_secretsync: 3, total: 0 });
  expect(await exported()).toEqual(['ns/many secret/o100 100', 'ns/many secret/o200 200']);
  expect(await dropped()).toEqual({ per_secretsync: 3 });
  // A new version with a later expiry: the next soonest takes its place, the stale series goes.
  series.set('ns', 'many', objects(500, 900, 300, 200, 400));
  expect(await exported()).toEqual(['ns/many secret/o200 200', 'ns/many secret/o300 300']);
  series.set('ns', 'many', undefined);
  expect(await exported()).toEqual([]);
});

test('over the total, the soonest across SecretSyncs are kept; a deleted SecretSync frees its series for the next soonest', async () => {
  const { series, exported, dropped } = setup(10, 4);
  expect(series.set('a', 'late', objects(1000, 1001, 1002))).toEqual({ per_secretsync: 0, total: 0 });
  // Sooner ones push the latest out, whichever namespace they are in.
  expect(series.set('b', 'soon', objects(10, 11, 12))).toEqual({ per_secretsync: 0, total: 0 });
  expect(await exported()).toEqual([
    'a/late secret/o1000 1000',
    'b/soon secret/o10 10',
    'b/soon secret/o11 11',
    'b/soon secret/o12 12',
  ]);
  expect(series.size).toBe(4);
  // A later one than all kept is left out, and counted.
  expect(series.set('c', 'later', objects(5000))).toEqual({ per_secretsync: 0, total: 1 });
  expect(await dropped()).toEqual({ total: 1 });
  series.set('b', 'soon', undefined);
  expect(await exported()).toEqual([
    'a/late secret/o1000 1000',
    'a/late secret/o1001 1001',
    'a/late secret/o1002 1002',
    'c/later secret/o5000 5000',
  ]);
  // Re-reporting the same expiries moves nothing.
  series.set('a', 'late', objects(1000, 1001, 1002));
  expect(series.size).toBe(4);
  expect(await exported()).toContain('c/later secret/o5000 5000');
});

test("whatever the sequence of syncs and deletions, the series are the soonest of each SecretSync's soonest", async () => {
  // A small deterministic generator: the same sequence on every run.
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
  const perSecretSync = 3,
    total = 7;
  const { series, exported } = setup(perSecretSync, total);
  const state = new Map<string, number[]>();
  let t = 0;
  for (let step = 0; step < 2_000; step++) {
    const name = `s${rand(6)}`;
    if (rand(5) === 0) {
      series.set('ns', name, undefined);
      state.delete(name);
    } else {
      // Distinct expiries, so "the soonest" is one answer.
      const times = Array.from({ length: rand(6) }, () => rand(1_000) * 100_000 + ++t);
      series.set('ns', name, objects(...times));
      if (times.length) state.set(name, times);
      else state.delete(name);
    }
    const want = [...state]
      .flatMap(([n, ts]) =>
        [...ts]
          .sort((a, b) => a - b)
          .slice(0, perSecretSync)
          .map((s) => ({ n, s })),
      )
      .sort((a, b) => a.s - b.s)
      .slice(0, total)
      .map(({ n, s }) => `ns/${n} secret/o${s} ${s}`)
      .sort();
    expect([step, await exported()]).toEqual([step, want]);
  }
});

test('the caps are flags: 20 per SecretSync and 10 000 in all by default; 0 exports none', () => {
  const cfg = parseConfig([]) as Config;
  expect([cfg.maxExpirySeriesPerSecretSync, cfg.maxExpirySeries]).toEqual([20, 10_000]);
  const set = parseConfig(['--max-expiry-series-per-secretsync=0', '--max-expiry-series=5']) as Config;
  expect([set.maxExpirySeriesPerSecretSync, set.maxExpirySeries]).toEqual([0, 5]);
  expect(() => parseConfig(['--max-expiry-series=-1'])).toThrow(
    /--max-expiry-series must be a whole number from 0 to 1000000/,
  );
});

test('a cap of 0 exports nothing and counts everything', async () => {
  const { series, exported, dropped } = setup(0, 10);
  series.set('ns', 'x', objects(1, 2));
  expect(await exported()).toEqual([]);
  expect(await dropped()).toEqual({ per_secretsync: 2 });
});
