// Manager reconcile latency on the local stack with the test provider: one SecretSync from create
// to Ready (p50/p99 over 20), and N created at once until all are Ready. Writes
// bench/results/manager-sync.json. Run: npm run bench:manager [-- N]
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../test/env/control-plane.js';
import { startStack, toEnv, PRELOAD } from '../test/env/stack.js';
import { startManager } from '../test/helpers/manager.js';
import { startTestProvider } from '../test/helpers/provider.js';

const N = Number(process.argv[2] ?? 500);
const co = { group: 'secret-sync.x-k8s.io', version: 'v1alpha1', plural: 'secretsyncs' };

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
}

async function main(): Promise<void> {
  if (!process.env.NODE_OPTIONS?.includes('preload.mjs')) throw new Error(`run with NODE_OPTIONS=--import ${PRELOAD}`);
  const stack = await startStack({ manifests: [join(repoRoot, 'deploy', 'crds', 'secret-sync.x-k8s.io_secretsyncs.yaml'), join(repoRoot, 'deploy', 'crds', 'secrets-store.csi.x-k8s.io_secretproviderclasses.yaml')], log: () => undefined });
  Object.assign(process.env, toEnv(stack.info));
  const kc = new KubeConfig();
  kc.loadFromFile(stack.info.k8s.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const results: Record<string, unknown> = { at: new Date().toISOString(), n: N };
  const provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'value' } });
  try {
    const ns = 'bench';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'sa' } } });
    await custom.createNamespacedCustomObject({ group: 'secrets-store.csi.x-k8s.io', version: 'v1', namespace: ns, plural: 'secretproviderclasses', body: { apiVersion: 'secrets-store.csi.x-k8s.io/v1', kind: 'SecretProviderClass', metadata: { name: 'spc' }, spec: { provider: 'test', parameters: { prefix: '' } } } });
    const manager = await startManager({ namespace: ns, providerDir: provider.socketDir, args: ['--workers=16', '--log-level=warn'] });
    const body = (name: string) => ({ apiVersion: 'secret-sync.x-k8s.io/v1alpha1', kind: 'SecretSync', metadata: { name }, spec: { serviceAccountName: 'sa', secretProviderClassName: 'spc', secretObject: { data: [{ sourcePath: 'foo', targetKey: 'key' }] } } });
    const ready = async (name: string) => {
      for (;;) {
        const ss = (await custom.getNamespacedCustomObject({ ...co, namespace: ns, name })) as { status?: { conditions?: { type: string; status: string }[] } };
        if (ss.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const single: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await custom.createNamespacedCustomObject({ ...co, namespace: ns, body: body(`one-${i}`) });
      await ready(`one-${i}`);
      single.push(performance.now() - t);
    }
    results.oneSecretSyncCreateToReadyMs = { p50: pct(single, 50), p99: pct(single, 99) };

    const t0 = performance.now();
    const names = Array.from({ length: N }, (_, i) => `many-${i}`);
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => custom.createNamespacedCustomObject({ ...co, namespace: ns, body: body(n) })));
    const created = performance.now() - t0;
    for (;;) {
      const list = (await custom.listNamespacedCustomObject({ ...co, namespace: ns })) as { items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] };
      const done = list.items.filter((o) => o.metadata.name.startsWith('many-') && o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
      if (done === N) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const total = performance.now() - t0;
    results.manyCreatedAtOnce = { createRequestsMs: Math.round(created), allReadyMs: Math.round(total), syncsPerSecond: Number((N / (total / 1000)).toFixed(1)) };
    const metrics = await manager.metrics();
    results.managerRssMb = Number((Number(/process_resident_memory_bytes (\d+)/.exec(metrics)?.[1] ?? 0) / 1e6).toFixed(1));
    await manager.stop();
  } finally {
    await provider.stop();
    await stack.stop();
  }
  writeFileSync(join(repoRoot, 'bench', 'results', 'manager-sync.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(JSON.stringify(results, null, 2));
}

await main();
