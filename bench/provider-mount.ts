// Mount latency of provider-azure against the local stack: 1 and 20 objects, first read (cold:
// token exchange, challenge, reads) and repeated reads (warm: cached tokens; pinned versions from
// the version cache). Run: npm run bench:provider. Writes bench/results/provider-mount.json.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AzureStack } from '../test/env/azure/client.js';
import { repoRoot } from '../test/env/control-plane.js';
import { startStack, toEnv, PRELOAD } from '../test/env/stack.js';
import { objectsYaml } from '../test/helpers/fixtures.js';
import { mountRequest, startProvider } from '../test/helpers/provider.js';
import { percentile, round } from './lib.js';

const RUNS = 30;

async function main(): Promise<void> {
  if (!process.env.NODE_OPTIONS?.includes('preload.mjs')) throw new Error(`run with NODE_OPTIONS=--import ${PRELOAD}`);
  const stack = await startStack({ log: () => undefined });
  Object.assign(process.env, toEnv(stack.info), { NODE_EXTRA_CA_CERTS: stack.info.caFile });
  const azure = new AzureStack(stack.info);
  const kc = new KubeConfig();
  kc.loadFromFile(stack.info.k8s.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const results: Record<string, unknown> = { at: new Date().toISOString(), runs: RUNS };
  try {
    await core.createNamespace({ body: { metadata: { name: 'bench' } } });
    await core.createNamespacedServiceAccount({ namespace: 'bench', body: { metadata: { name: 'sa' } } });
    const id = await azure.createIdentity('bench');
    await azure.addFederatedCredential(id.clientId, {
      name: 'f',
      issuer: stack.info.k8s.issuer,
      subject: 'system:serviceaccount:bench:sa',
    });
    await azure.createVault('bench-kv');
    await azure.assignRole('Key Vault Secrets User', id.clientId, 'bench-kv');
    const versions: string[] = [];
    for (let i = 0; i < 20; i++) versions.push(await azure.setSecret('bench-kv', `s${i}`, `value-${i}`));
    const token = (
      await core.createNamespacedServiceAccountToken({
        name: 'sa',
        namespace: 'bench',
        body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 3600 } },
      })
    ).status!.token;
    const provider = await startProvider();
    const req = (n: number, pinned: boolean) =>
      mountRequest({
        parameters: {
          keyvaultName: 'bench-kv',
          tenantID: azure.tenantId,
          clientID: id.clientId,
          objects: objectsYaml(
            Array.from({ length: n }, (_, i) => ({
              objectName: `s${i}`,
              objectType: 'secret',
              ...(pinned ? { objectVersion: versions[i]! } : {}),
            })),
          ),
        },
        token,
        namespace: 'bench',
        serviceAccount: 'sa',
      });
    const time = async (r: ReturnType<typeof req>) => {
      const t = process.hrtime.bigint();
      await provider.client.mount(r);
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    results.coldFirstMount1ObjectMs = await time(req(1, false));
    for (const n of [1, 20]) {
      for (const pinned of [false, true]) {
        const samples: number[] = [];
        for (let i = 0; i < RUNS; i++) samples.push(await time(req(n, pinned)));
        results[`${n}objects_${pinned ? 'pinned' : 'latest'}`] = {
          p50Ms: round(percentile(samples, 50), 2),
          p99Ms: round(percentile(samples, 99), 2),
        };
      }
    }
    const stats = await azure.stats();
    results.vaultRequests = stats.vaultRequests;
    const metrics = await provider.metrics();
    results.cacheLookups = Object.fromEntries(
      [...metrics.matchAll(/keyvault_cache_lookups_total\{result="(\w+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])]),
    );
    await provider.stop();
  } finally {
    await stack.stop();
  }
  const out = join(repoRoot, 'bench', 'results', 'provider-mount.json');
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(JSON.stringify(results, null, 2));
}

await main();
