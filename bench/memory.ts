// `NODE_OPTIONS=--import ./test/env/preload.mjs npx tsx bench/memory.ts [--n=5000] [--interval=40] [--rounds=1] [--configs=<json>]`:
// a focused memory scenario to compare node flags back to back on one stack (example provider): N SecretSyncs, then per
// configuration a manager that rewrites them all (a fresh change-hash key: a sync burst) and then
// rotates them once (a no-change pass). Configurations run interleaved, `rounds` times, so the
// shared machine's noise falls on all of them. Prints RSS, peak, V8 heap and CPU per sync.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../controller/src/api.js';
import { KubeClients } from '../controller/src/kube-client.js';
import { repoRoot } from '../test/env/control-plane.js';
import { startStack, toEnv } from '../test/env/stack.js';
import { secretSync as secretSyncBody } from '../test/helpers/fixtures.js';
import { eventually } from '../test/helpers/kube.js';
import { startManager, type RunningManager } from '../test/helpers/manager.js';
import { startTestProvider } from '../test/helpers/provider.js';
import { heapFields, metricSum, pool, processStats, round } from './lib.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
    configs: { type: 'string' },
    interval: { type: 'string', default: '40' },
  },
});
const N = Number(args.n);
const INTERVAL = Number(args.interval);
/** snapshot: writes a heap snapshot after the pass (node flags must include --heapsnapshot-signal=SIGUSR2). */
type Cfg = {
  name: string;
  nodeArgs?: string[];
  env?: Record<string, string>;
  snapshot?: boolean;
  entry?: 'bundle' | 'dist';
};
const CONFIGS: Cfg[] = args.configs ? (JSON.parse(args.configs) as Cfg[]) : [{ name: 'default' }];

/**
 * Node writes the snapshot (Heap.<date>.<pid>.….heapsnapshot, in --diagnostic-dir or the working
 * folder) on the manager's main thread: once the file is there and the manager answers again, it is
 * complete.
 */
async function snapshotWritten(m: RunningManager, nodeArgs: string[] = []): Promise<void> {
  const dir = nodeArgs.find((a) => a.startsWith('--diagnostic-dir='))?.slice('--diagnostic-dir='.length) ?? '.';
  const pid = m.child.pid!;
  const there = () =>
    readdirSync(dir).some((f) => f.startsWith('Heap.') && f.endsWith(`.heapsnapshot`) && f.includes(`.${pid}.`));
  await eventually(
    async () => (there() && (await m.metrics()) ? true : undefined),
    5 * 60_000,
    'the heap snapshot',
    500,
  );
}

const t0 = performance.now();
const say = (m: string) => console.log(`[mem ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);

const crds = ['secret-sync.x-k8s.io_secretsyncs.yaml', 'secrets-store.csi.x-k8s.io_secretproviderclasses.yaml'].map(
  (f) => join(repoRoot, 'deploy', 'crds', f),
);
const stack = await startStack({ manifests: crds, log: () => undefined });
Object.assign(process.env, toEnv(stack.info), { NODE_EXTRA_CA_CERTS: stack.info.caFile });
const provider = await startTestProvider('test');
provider.setState({ files: { foo: 'value' } });
try {
  const kc = new KubeConfig();
  kc.loadFromFile(stack.info.k8s.kubeconfig);
  const clients = new KubeClients(kc);
  const core = clients.make(CoreV1Api);
  const custom = clients.make(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'mem' } } });
  await core.createNamespacedServiceAccount({ namespace: 'mem', body: { metadata: { name: 'app' } } });
  await custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: 'mem',
    plural: 'secretproviderclasses',
    body: {
      apiVersion: 'secrets-store.csi.x-k8s.io/v1',
      kind: 'SecretProviderClass',
      metadata: { name: 'spc' },
      spec: { provider: 'test', parameters: { prefix: '' } },
    },
  });
  await pool(
    Array.from({ length: N }, (_, i) => i),
    32,
    async (i) => {
      await custom.createNamespacedCustomObject({
        group: SYNC_GROUP,
        version: SYNC_VERSION,
        plural: SYNC_PLURAL,
        namespace: 'mem',
        body: secretSyncBody({ name: `m-${i}`, sa: 'app', spc: 'spc', type: 'Opaque', data: { key: 'foo' } }),
      });
    },
  );
  say(`${N} SecretSyncs created`);
  const dir = mkdtempSync(join(tmpdir(), 'sss-mem-'));
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const c of CONFIGS) {
      const m = await startManager({
        hashKey: randomBytes(32),
        namespace: '',
        providerDir: provider.socketDir,
        dir,
        args: [
          '--workers=16',
          '--log-level=info',
          `--rotation-poll-interval-seconds=${INTERVAL}`,
          `--rotation-share-seconds=${Math.floor(INTERVAL / 2)}`,
        ],
        nodeArgs: c.nodeArgs,
        env: c.env,
        entry: c.entry,
      });
      const pid = m.child.pid!;
      const count = async (reasons?: string[]) => {
        const t = await m.metrics();
        return reasons
          ? reasons.reduce((a, reason) => a + metricSum(t, 'secretsync_reconciles_total', { reason }), 0)
          : metricSum(t, 'secretsync_reconciles_total');
      };
      const s0 = processStats(pid);
      const burstStart = performance.now();
      await eventually(async () => ((await count()) >= N ? true : undefined), 10 * 60_000, 'the burst', 500);
      const burstSeconds = round((performance.now() - burstStart) / 1000);
      const s1 = processStats(pid);
      const t1 = await m.metrics();
      await eventually(
        async () => ((await count(['UpdateNoValueChangeSucceeded'])) >= N ? true : undefined),
        10 * 60_000,
        'the pass',
        500,
      );
      const s2 = processStats(pid);
      const t2 = await m.metrics();
      const line = {
        config: c.name,
        round: r + 1,
        cpuMsPerSync: round(((s1.cpuSeconds - s0.cpuSeconds) * 1000) / N, 3),
        cpuMsPerRotation: round(((s2.cpuSeconds - s1.cpuSeconds) * 1000) / N, 3),
        // How long the rewrite of all N took, and the Events the manager dropped meanwhile.
        burstSeconds,
        eventsDropped: metricSum(t2, 'secretsync_events_dropped_total'),
        afterBurst: { rss: s1.rssMb, ...heapFields(t1) },
        afterPass: { rss: s2.rssMb, ...heapFields(t2) },
        peak: s2.peakRssMb,
        // V8's spaces after the pass: committed / used MB (where the heap's headroom sits).
        spaces: Object.fromEntries(
          ['new', 'old', 'code', 'large_object', 'trusted', 'shared_large_object'].map((space) => [
            space,
            `${round(metricSum(t2, 'nodejs_heap_space_size_total_bytes', { space }) / 2 ** 20)} / ${round(metricSum(t2, 'nodejs_heap_space_size_used_bytes', { space }) / 2 ** 20)}`,
          ]),
        ),
      };
      console.log(JSON.stringify(line));
      if (c.snapshot) {
        process.kill(pid, 'SIGUSR2');
        await snapshotWritten(m, c.nodeArgs);
      }
      await m.stop();
    }
  }
} finally {
  await provider.stop();
  await stack.stop();
}
