// `NODE_OPTIONS=--import ./test/env/preload.mjs npx tsx bench/provider-memory.ts [--mounts=5000] [--rounds=2] [--passes=3] [--pass-wait=10] [--configs=<json>]`:
// provider-azure's memory, configurations back to back on one stack, in the shape of the full
// bench's stack B (5 namespaces with an identity each, 50 classes of three objects, one a version
// history, on one vault of the Key Vault emulator). Per configuration: a provider that serves
// `mounts` Mounts at 16 at a time (the manager's workers: the initial sync), then `passes` passes of
// one Mount per class, `pass-wait` seconds apart (the rotation passes). Prints RSS, peak, V8 heap, CPU per Mount and the burst's Mount latency.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AzureStack } from '../test/env/azure/client.js';
import { startStack, toEnv } from '../test/env/stack.js';
import { mountRequest, startProvider } from '../test/helpers/provider.js';
import { heapFields, percentile, pool, processStats, round, seedAzureClasses } from './lib.js';

const { values: args } = parseArgs({
  options: {
    mounts: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
    passes: { type: 'string', default: '3' },
    'pass-wait': { type: 'string', default: '10' },
    configs: { type: 'string' },
  },
});
const MOUNTS = Number(args.mounts);
type Cfg = {
  name: string;
  nodeArgs?: string[];
  args?: string[];
  env?: Record<string, string>;
  entry?: 'bundle' | 'dist';
};
const CONFIGS: Cfg[] = args.configs ? (JSON.parse(args.configs) as Cfg[]) : [{ name: 'default' }];
const NAMESPACES = 5;
const CLASSES = 50;

const t0 = performance.now();
const say = (m: string) => console.log(`[pmem ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);

const stack = await startStack({ log: () => undefined });
Object.assign(process.env, toEnv(stack.info), { NODE_EXTRA_CA_CERTS: stack.info.caFile });
try {
  const azure = new AzureStack(stack.info);
  const kc = new KubeConfig();
  kc.loadFromFile(stack.info.k8s.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const vault = 'pmem-kv';
  await azure.createVault(vault);
  const namespaces = Array.from({ length: NAMESPACES }, (_, k) => `pmem-${k}`);
  for (const ns of namespaces) {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
  }
  const classes = await seedAzureClasses(azure, vault, stack.info.k8s.issuer, namespaces, CLASSES, 'pmem');
  const tokens = new Map<string, string>();
  for (const ns of namespaces) {
    tokens.set(
      ns,
      (
        await core.createNamespacedServiceAccountToken({
          name: 'app',
          namespace: ns,
          body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 3600 } },
        })
      ).status!.token!,
    );
  }
  const request = (j: number) => {
    const c = classes[j % CLASSES]!;
    return mountRequest({
      parameters: { keyvaultName: vault, tenantID: azure.tenantId, clientID: c.clientId, objects: c.objects },
      token: tokens.get(c.namespace)!,
      namespace: c.namespace,
      serviceAccount: 'app',
    });
  };
  say(`${NAMESPACES} namespaces, ${CLASSES} classes ready`);
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const c of CONFIGS) {
      const provider = await startProvider({
        socketDir: mkdtempSync(join(tmpdir(), 'sss-pmem-')),
        args: ['--log-level=info', ...(c.args ?? [])],
        nodeArgs: c.nodeArgs,
        env: c.env,
        entry: c.entry,
      });
      const pid = provider.child.pid!;
      const heap = async () => heapFields(await provider.metrics());
      const s0 = processStats(pid);
      const atStart = { rss: s0.rssMb, ...(await heap()) };
      const latencies: number[] = [];
      await pool(
        Array.from({ length: MOUNTS }, (_, i) => i),
        16,
        async (i) => {
          const t = performance.now();
          await provider.client.mount(request(i));
          latencies.push(performance.now() - t);
        },
      );
      const s1 = processStats(pid);
      const afterBurst = { rss: s1.rssMb, ...(await heap()) };
      const passes: { rss: number; heapUsed: number; heapTotal: number }[] = [];
      for (let p = 0; p < Number(args.passes); p++) {
        // Passes `pass-wait` apart, as rotations are: the time between them is the condition.
        await new Promise((res) => setTimeout(res, Number(args['pass-wait']) * 1000));
        for (let j = 0; j < CLASSES; j++) await provider.client.mount(request(j));
        const h = await heap();
        passes.push({ rss: processStats(pid).rssMb, heapUsed: h.heapUsed, heapTotal: h.heapTotal });
      }
      const s2 = processStats(pid);
      const line = {
        config: c.name,
        round: r + 1,
        cpuMsPerMount: round(((s1.cpuSeconds - s0.cpuSeconds) * 1000) / MOUNTS, 3),
        cpuMsPerPassMount: round(((s2.cpuSeconds - s1.cpuSeconds) * 1000) / (passes.length * CLASSES), 3),
        // Mount latency in the burst (16 at a time), client side: what fewer GC threads would cost.
        burstLatencyMs: {
          p50: round(percentile(latencies, 50), 1),
          p99: round(percentile(latencies, 99), 1),
          max: round(Math.max(...latencies), 1),
        },
        atStart,
        afterBurst,
        passes,
        peak: s2.peakRssMb,
      };
      console.log(JSON.stringify(line));
      await provider.stop();
    }
  }
} finally {
  await stack.stop();
}
