// `vault` labels: earned by an HTTP answer, at most `max`, least recently answered evicted with its series.
import { createMetrics } from '../src/metrics.js';
import { OTHER_VAULT, VaultRequestMetrics } from '../src/vault-labels.js';

async function series(m: ReturnType<typeof createMetrics>) {
  const requests = (await m.keyvaultRequests.get()).values.map(
    (v) => `${v.labels.vault} ${v.labels.operation} ${v.labels.status} ${v.value}`,
  );
  const durations = new Set(
    (await m.keyvaultDuration.get()).values.map((v) => `${v.labels.vault} ${v.labels.operation}`),
  );
  return { requests: requests.sort(), durations: [...durations].sort() };
}

test('a tenant naming 1 000 vaults that never answer takes no label: the real vault keeps its own', async () => {
  const m = createMetrics();
  const labels = new VaultRequestMetrics(m, 3);
  for (let i = 0; i < 1_000; i++) labels.record(`junk-${i}`, 'secrets/get', undefined, 0.01);
  labels.record('real', 'secrets/get', 401, 0.01);
  labels.record('real', 'secrets/get', 200, 0.01);
  expect(labels.vaults()).toEqual(['real']);
  expect((await series(m)).requests).toEqual([
    'other secrets/get error 1000',
    'real secrets/get 200 1',
    'real secrets/get 401 1',
  ]);
  // A labelled vault that stops answering keeps its label: it earned it.
  labels.record('real', 'secrets/get', undefined, 0.01);
  expect((await series(m)).requests).toContain('real secrets/get error 1');
});

test('when full, the least recently answered vault is evicted and its series removed', async () => {
  const m = createMetrics();
  const labels = new VaultRequestMetrics(m, 2);
  labels.record('a', 'secrets/get', 200, 0.01);
  labels.record('b', 'secrets/get', 200, 0.01);
  labels.record('b', 'secrets/versions', 429, 0.01);
  labels.record('a', 'keys/get', 200, 0.01); // a is now the most recent
  labels.record('c', 'secrets/get', 403, 0.01);
  expect(labels.vaults()).toEqual(['a', 'c']);
  const { requests, durations } = await series(m);
  expect(requests).toEqual(['a keys/get 200 1', 'a secrets/get 200 1', 'c secrets/get 403 1']);
  expect(durations).toEqual(['a keys/get', 'a secrets/get', 'c secrets/get']);
  // Back after eviction: it starts afresh (a counter reset to Prometheus), and evicts the next least recent.
  labels.record('b', 'secrets/get', 200, 0.01);
  expect(labels.vaults()).toEqual(['c', 'b']);
  expect((await series(m)).requests).toEqual(['b secrets/get 200 1', 'c secrets/get 403 1']);
});

test('a vault that only answered 401 (any existing vault does, to anyone) never evicts one that answered an authenticated request', async () => {
  const m = createMetrics();
  const labels = new VaultRequestMetrics(m, 2);
  labels.record('real-1', 'secrets/get', 200, 0.01);
  labels.record('real-2', 'secrets/get', 429, 0.01);
  for (let i = 0; i < 50; i++) labels.record(`someone-elses-${i}`, 'secrets/get', 401, 0.01);
  expect(labels.vaults()).toEqual(['real-1', 'real-2']);
  expect((await series(m)).requests).toContain(`${OTHER_VAULT} secrets/get 401 50`);

  // With room, 401-only vaults are labelled, and are the first to go.
  const roomy = new VaultRequestMetrics(createMetrics(), 3);
  roomy.record('real-1', 'secrets/get', 200, 0.01);
  roomy.record('challenged', 'secrets/get', 401, 0.01);
  roomy.record('real-2', 'secrets/get', 200, 0.01);
  roomy.record('real-3', 'secrets/get', 401, 0.01); // its challenge first…
  expect(roomy.vaults()).toEqual(['real-1', 'real-2', 'real-3']);
  roomy.record('real-3', 'secrets/get', 200, 0.01); // …then its authenticated read: it stays
  roomy.record('real-4', 'secrets/get', 200, 0.01);
  expect(roomy.vaults()).toEqual(['real-2', 'real-3', 'real-4']);
});
