// The change-key index: which SecretSyncs a provider's notice reaches, from each one's last
// successful Mount, and the caps that keep one namespace from taking another's share of it.
import type { MountAnswer } from '../src/provider.js';
import { ChangeIndex, type ChangeKeysDropReason } from '../src/change-index.js';

/** A Mount's answer that returned these objects and named these change keys (by object id). */
function answer(objects: string[], keys: Record<string, string>, dropped = 0): MountAnswer {
  return {
    files: [],
    error: null,
    objectVersion: objects.map((id) => ({ id, version: 'v1' })),
    changeKeys: { keys, dropped },
  };
}

function index(limits = { perSecretSync: 10, total: 100 }) {
  const dropped: Partial<Record<ChangeKeysDropReason, number>> = {};
  const ix = new ChangeIndex(limits, (reason, n) => (dropped[reason] = (dropped[reason] ?? 0) + n));
  return { ix, dropped };
}

test('a key reaches every SecretSync whose last Mount named it, on that provider only; an unknown key reaches none', () => {
  const { ix } = index();
  ix.remember('a/one', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  ix.remember('b/two', 'azure', answer(['s/x', 's/y'], { 's/x': 'kx', 's/y': 'ky' }));
  ix.remember('a/three', 'vault', answer(['s/x'], { 's/x': 'kx' }));
  expect(ix.noticed('azure', ['kx'], 1).sort()).toEqual(['a/one', 'b/two']);
  expect(ix.noticed('azure', ['ky', 'ky'], 1)).toEqual(['b/two']);
  expect(ix.noticed('azure', ['nobody'], 1)).toEqual([]);
  expect(ix.noticed('other', ['kx'], 1)).toEqual([]);
  expect(ix.size()).toBe(4);
});

test("a Mount replaces the SecretSync's keys (even on another provider); a delete removes them; an answer without keys clears them", () => {
  const { ix } = index();
  ix.remember('a/one', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  ix.remember('a/one', 'vault', answer(['s/y'], { 's/y': 'ky' }));
  expect(ix.noticed('azure', ['kx'], 1)).toEqual([]);
  expect(ix.noticed('vault', ['ky'], 1)).toEqual(['a/one']);
  ix.remember('a/one', 'vault', { files: [], error: null, objectVersion: [{ id: 's/y', version: 'v2' }] });
  expect([ix.noticed('vault', ['ky'], 1), ix.size()]).toEqual([[], 0]);
  ix.remember('a/one', 'vault', answer(['s/y'], { 's/y': 'ky' }));
  ix.delete('a/one');
  expect([ix.noticed('vault', ['ky'], 1), ix.size()]).toEqual([[], 0]);
});

test('a provider may name keys only for objects it returned, and at most the per-SecretSync cap of them', () => {
  const { ix, dropped } = index({ perSecretSync: 2, total: 100 });
  ix.remember(
    'a/one',
    'azure',
    answer(['s/1', 's/2', 's/3'], { 's/1': 'k1', 's/2': 'k2', 's/3': 'k3', 's/9': 'k9' }, 2),
  );
  // The first objects by id are kept; the stray one and the two the client already dropped are counted.
  expect(ix.noticed('azure', ['k1', 'k2', 'k3', 'k9'], 1)).toEqual(['a/one']);
  expect(ix.size()).toBe(2);
  expect(ix.noticed('azure', ['k3'], 1)).toEqual([]);
  expect(dropped).toEqual({ not_returned: 3, per_secretsync: 1 });
});

test('at the total cap the namespace holding the most gives way, never one holding fewer than the asker', () => {
  const { ix, dropped } = index({ perSecretSync: 10, total: 10 });
  const keys = (prefix: string, n: number) => {
    const ids = Array.from({ length: n }, (_, i) => `s/${i}`);
    return answer(ids, Object.fromEntries(ids.map((id, i) => [id, `${prefix}${i}`])));
  };
  // A hostile namespace fills the index.
  for (let i = 0; i < 5; i++) ix.remember(`greedy/s${i}`, 'azure', keys(`g${i}-`, 2));
  expect(ix.size()).toBe(10);
  // Another namespace still gets its keys: the greedy one's oldest give way.
  ix.remember('quiet/app', 'azure', keys('q', 3));
  expect(ix.noticed('azure', ['q0', 'q1', 'q2'], 1)).toEqual(['quiet/app']);
  expect(ix.noticed('azure', ['g0-0', 'g1-0'], 1)).toEqual([]);
  expect(ix.size()).toBeLessThanOrEqual(10);
  // The greedy namespace cannot take them back (it holds more than the quiet one): free room only.
  ix.remember('greedy/s9', 'azure', keys('g9-', 2));
  expect(ix.noticed('azure', ['q0', 'q1', 'q2'], 1)).toEqual(['quiet/app']);
  expect(ix.noticed('azure', ['g9-1'], 1)).toEqual([]);
  expect(ix.size()).toBe(10);
  expect(dropped.total).toBeGreaterThan(0);
});

test('a notice marks the SecretSyncs it reaches with its mark, until their run takes it; an edit clears it', () => {
  const { ix } = index();
  ix.remember('a/one', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  ix.remember('a/two', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  ix.noticed('azure', ['kx'], 5);
  ix.noticed('azure', ['kx'], 7); // a later notice: the run must read after it
  expect(ix.takeNotice('a/one')).toBe(7);
  expect(ix.takeNotice('a/one')).toBeUndefined();
  ix.clearNotice('a/two');
  expect(ix.takeNotice('a/two')).toBeUndefined();
  // A Mount keeps a pending notice (the run it belongs to may be the one mounting); a delete drops it.
  ix.noticed('azure', ['kx'], 9);
  ix.remember('a/one', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  expect(ix.takeNotice('a/one')).toBe(9);
  ix.noticed('azure', ['kx'], 10);
  ix.delete('a/two');
  expect(ix.takeNotice('a/two')).toBeUndefined();
});

test('per-SecretSync cap 0 indexes nothing', () => {
  const { ix } = index({ perSecretSync: 0, total: 100 });
  ix.remember('a/one', 'azure', answer(['s/x'], { 's/x': 'kx' }));
  expect([ix.noticed('azure', ['kx'], 1), ix.size()]).toEqual([[], 0]);
});

test('a Mount answers the keys it kept, by object id, for the status to keep', () => {
  const { ix } = index({ perSecretSync: 2, total: 100 });
  const kept = ix.remember(
    'a/one',
    'azure',
    // A certificate's secret and key share one change key; a stray id is not kept.
    answer(['s/a', 's/b', 's/c', 's/d'], { 's/a': 'k1', 's/b': 'k1', 's/c': 'k2', 's/d': 'k3', 's/9': 'k9' }),
  );
  expect(kept).toEqual({ 's/a': 'k1', 's/b': 'k1', 's/c': 'k2' });
  expect(ix.remember('a/two', 'azure', { files: [], error: null, objectVersion: [] })).toEqual({});
});

test("a restarted manager's index takes the status's keys; its own Mounts have the last word", () => {
  const { ix, dropped } = index({ perSecretSync: 2, total: 100 });
  ix.restore('a/one', 'azure', ['kx', 'kx', 'ky']);
  expect(ix.noticed('azure', ['kx'], 1)).toEqual(['a/one']);
  expect(ix.noticed('azure', ['ky'], 1)).toEqual(['a/one']);
  // Whatever a status says later (a stale informer event), the Mount's keys stay.
  ix.remember('a/two', 'azure', answer(['s/x'], { 's/x': 'kz' }));
  ix.restore('a/two', 'azure', ['kold']);
  expect(ix.noticed('azure', ['kold'], 1)).toEqual([]);
  expect(ix.noticed('azure', ['kz'], 1)).toEqual(['a/two']);
  // A status anyone with status access could have written: malformed keys are left out, caps hold.
  ix.restore('b/three', 'azure', ['with space', 'x'.repeat(129), '', 'k1', 'k2', 'k3']);
  expect(ix.noticed('azure', ['k1', 'k2', 'k3'], 1)).toEqual(['b/three']);
  expect(ix.noticed('azure', ['k3'], 1)).toEqual([]);
  expect(dropped.per_secretsync).toBe(1);
  expect(ix.size()).toBe(5);
});
