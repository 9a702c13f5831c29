// Rollout restarts on a real node (test/env/node.ts: kubelet, containerd, the deployment and
// replicaset controllers): workloads that read a synced Secret as env vars are rolled once when a
// Key Vault secret gets a new value — and never by the first sync, a batch of changes, a manager
// killed and restarted (with its hash key or without), a leader handover or a new version of the
// same value. The manager runs as its own ServiceAccount with the chart's restart RBAC and
// admission policy (helm template --set restarts.enabled=true), which also refuse everything but
// the one annotation. One node serves every case, in order.
import { AppsV1Api, KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { applyManifests, repoRoot } from '../../test/env/control-plane.js';
import { managerKubeconfig, MANAGER_NAMESPACE } from '../../test/env/manager-identity.js';
import { startNode, type StackNode } from '../../test/env/node.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { azureParameters, secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';
import { SPC_GROUP, SPC_PLURAL, SPC_VERSION, type SecretSync } from '../src/api.js';
import { RESTART_LABEL, RESTART_SECRETSYNCS_ANNOTATION, RESTARTED_FOR_ANNOTATION } from '../src/restarts.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const apps = k.kc.makeApiClient(AppsV1Api);
const vault = `rst-${Date.now().toString(36)}`;
const WINDOW_SECONDS = 15;
const dir = mkdtempSync(join(tmpdir(), 'sss-restarts-'));
/** The hash key of the managers started next (a test changes it to model a lost key). */
let hashKey = randomBytes(32);
let node: StackNode;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let other: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
const managers: RunningManager[] = [];
let clientId: string;

const sync = { group: 'secret-sync.x-k8s.io', version: 'v1alpha1', plural: 'secretsyncs' };

/** A manager with restarts on, one of the Lease's candidates; the same hash key unless told. */
async function manager(key = hashKey): Promise<RunningManager> {
  hashKey = key;
  const m = await startManager({
    namespace: '',
    providerDir: provider.endpoint.slice('unix://'.length, -'/azure.sock'.length),
    dir: mkdtempSync(join(dir, 'manager-')),
    hashKey: key,
    env: { POD_NAME: `manager-${managers.length}` },
    args: [
      '--restarts=true',
      `--restart-debounce-seconds=${WINDOW_SECONDS}`,
      '--restart-min-interval-seconds=1',
      '--rotation-poll-interval-seconds=2',
      '--leader-elect=true',
      `--leader-election-namespace=${MANAGER_NAMESPACE}`,
      '--leader-election-id=secret-store-sync-manager',
      '--lease-duration-seconds=5',
    ],
  });
  managers.push(m);
  return m;
}
const leading = (m: RunningManager) =>
  eventually(async () => (/"message":"leading"/.test(m.logs()) ? true : undefined), 60_000, 'a manager to lead');

/** A Deployment whose container prints the env var GREETING, read from the Secret `secret`'s key. */
function deployment(o: {
  name: string;
  namespace: string;
  replicas: number;
  names?: string;
  labelled?: boolean;
  secret: string;
  key: string;
}): V1Deployment {
  return {
    metadata: {
      name: o.name,
      ...(o.labelled === false ? {} : { labels: { [RESTART_LABEL]: 'true' } }),
      annotations: { [RESTART_SECRETSYNCS_ANNOTATION]: o.names ?? o.secret },
    },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name } },
        spec: {
          hostNetwork: true,
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'app',
              image: node.info.images.manager,
              imagePullPolicy: 'Never',
              command: ['node', '-e', "console.log('greeting=' + process.env.GREETING); setInterval(() => {}, 1e9)"],
              env: [{ name: 'GREETING', valueFrom: { secretKeyRef: { name: o.secret, key: o.key } } }],
              resources: { limits: { cpu: '100m', memory: '64Mi' } },
            },
          ],
        },
      },
    },
  };
}

const read = (name: string, namespace = ns.name) => apps.readNamespacedDeployment({ name, namespace });
/** How many rollouts a Deployment has had: its revision (1 = as created). */
const revision = async (name: string, namespace = ns.name) =>
  Number((await read(name, namespace)).metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
const secretValue = async (name: string, key: string) => {
  const s = await k.core.readNamespacedSecret({ name, namespace: ns.name });
  return Buffer.from(s.data?.[key] ?? '', 'base64').toString();
};

/** Waits until the Deployment's rollout is complete: every replica updated and ready, no old pod left. */
async function rolledOut(name: string): Promise<string[]> {
  return eventually(
    async () => {
      const d = await read(name);
      const want = d.spec!.replicas!;
      const st = d.status ?? {};
      if (st.observedGeneration !== d.metadata!.generation) return undefined;
      if (st.updatedReplicas !== want || st.readyReplicas !== want || st.replicas !== want) return undefined;
      const pods = (await k.core.listNamespacedPod({ namespace: ns.name, labelSelector: `app=${name}` })).items;
      if (pods.length !== want) return undefined;
      const logs = await Promise.all(
        pods.map((p) => k.core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: ns.name })),
      );
      return logs.every((l) => l.includes('greeting=')) ? logs.map((l) => l.trim()) : undefined;
    },
    180_000,
    `${name} rolled out`,
    1_000,
  );
}

/** Until both SecretSyncs have synced after `at` (rotations every 2 s): a window has passed when `at` is its end. */
async function syncedAfter(at: number): Promise<void> {
  await eventually(
    async () => {
      for (const name of ['app', 'parts']) {
        const ss = (await k.custom.getNamespacedCustomObject({ ...sync, namespace: ns.name, name })) as SecretSync;
        if (!(Date.parse(ss.status?.lastSuccessfulSyncTime ?? '') > at)) return undefined;
      }
      return true;
    },
    at - Date.now() + 60_000,
    'syncs after the window',
    1_000,
  );
}
/** The end of a window opened now, and a rotation. */
const windowFromNow = () => Date.now() + WINDOW_SECONDS * 1000 + 2_000;

async function events(name: string, reason: string): Promise<string[]> {
  const list = await k.core.listNamespacedEvent({
    namespace: ns.name,
    fieldSelector: `involvedObject.name=${name},reason=${reason}`,
  });
  return list.items.map((e) => e.message ?? '');
}

async function metric(m: RunningManager, series: string): Promise<number> {
  const line = (await m.metrics()).split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** `helm template` of the chart as the manager's release in its namespace. */
function helmTemplate(kubeVersion: string, ...args: string[]): string {
  const helm = execFileSync('bash', [join(repoRoot, 'test', 'env', 'build-helm.sh')], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
  const chart = join(repoRoot, 'deploy', 'chart', 'secret-store-sync');
  return execFileSync(
    helm,
    ['template', 'secret-store-sync', chart, '--namespace', MANAGER_NAMESPACE, '--kube-version', kubeVersion, ...args],
    { encoding: 'utf8' },
  );
}

beforeAll(async () => {
  node = await startNode({ stack: info, log: (m) => console.log(`[node] ${m}`) });
  ns = await tempNamespace(k.core, 'rst');
  other = await tempNamespace(k.core, 'rsto');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  clientId = await azure.workloadReader({
    name: `rst-${ns.name}`,
    vault,
    namespace: ns.name,
    serviceAccount: 'workload',
  });
  for (const [name, value] of Object.entries({ greeting: 'hello-1', 'part-a': 'a1', 'part-b': 'b1', 'part-c': 'c1' }))
    await azure.setSecret(vault, name, value);

  // The manager's identity as the chart makes it, with restarts on: its RBAC and admission policy.
  const admin = new KubeConfig();
  admin.loadFromFile(info.k8s.kubeconfig);
  await managerKubeconfig(info, dir);
  const rendered = join(dir, 'restarts.yaml');
  writeFileSync(
    rendered,
    helmTemplate(info.k8s.version, '--set', 'restarts.enabled=true', '--show-only', 'templates/restarts.yaml'),
  );
  await applyManifests(admin, [rendered]);

  // The workloads first: the Secrets' first creation must roll nothing.
  const create = (d: V1Deployment, namespace = ns.name) => apps.createNamespacedDeployment({ namespace, body: d });
  await create(deployment({ name: 'web', namespace: ns.name, replicas: 2, secret: 'app', key: 'greeting' }));
  await create(deployment({ name: 'parts-reader', namespace: ns.name, replicas: 1, secret: 'parts', key: 'a' }));
  await create(
    deployment({
      name: 'unlabelled',
      namespace: ns.name,
      replicas: 0,
      secret: 'app',
      key: 'greeting',
      labelled: false,
    }),
  );
  // The other two kinds, with no pods (0 replicas; a node selector no node has).
  const { spec, metadata } = deployment({
    name: 'db',
    namespace: ns.name,
    replicas: 0,
    secret: 'app',
    key: 'greeting',
  });
  await apps.createNamespacedStatefulSet({
    namespace: ns.name,
    body: { metadata, spec: { replicas: 0, serviceName: 'db', selector: spec!.selector, template: spec!.template } },
  });
  const nowhere = { ...spec!.template, spec: { ...spec!.template.spec!, nodeSelector: { 'example.com/none': 'x' } } };
  await apps.createNamespacedDaemonSet({
    namespace: ns.name,
    body: { metadata: { ...metadata, name: 'agent' }, spec: { selector: spec!.selector, template: nowhere } },
  });
  // In another namespace, naming the same SecretSync name: never rolled for ours.
  await create(
    deployment({ name: 'elsewhere', namespace: other.name, replicas: 0, secret: 'app', key: 'greeting' }),
    other.name,
  );

  for (const [name, objects] of [
    ['app', ['greeting']],
    ['parts', ['part-a', 'part-b', 'part-c']],
  ] as const) {
    const parameters = azureParameters({
      keyvaultName: vault,
      tenantID: azure.tenantId,
      clientID: clientId,
      objects: objects.map((objectName) => ({ objectName, objectType: 'secret' })),
    });
    const spc = { group: SPC_GROUP, version: SPC_VERSION, plural: SPC_PLURAL };
    await k.custom.createNamespacedCustomObject({
      ...spc,
      namespace: ns.name,
      body: secretProviderClass({ name, provider: 'azure', parameters }),
    });
    await k.custom.createNamespacedCustomObject({
      ...sync,
      namespace: ns.name,
      body: secretSync({
        name,
        sa: 'workload',
        spc: name,
        type: 'Opaque',
        data: objects.map((o) => ({ sourcePath: o, targetKey: o === 'greeting' ? 'greeting' : o.slice(-1) })),
      }),
    });
  }
  provider = await startProvider({ socketDir: mkdtempSync(join(dir, 'provider-')) });
  await leading(await manager());
}, 900_000);

afterAll(async () => {
  for (const m of managers) await m.stop('SIGKILL');
  await provider?.stop();
  await ns?.dispose();
  await other?.dispose();
  await node?.stop();
}, 180_000);

test('the chart: off by default (no flag, RBAC or policy); on, the flags, the RBAC, and the policy where policies are served', () => {
  const off = helmTemplate('1.36.3');
  expect(off).not.toMatch(/--restarts|manager-restarts|workload-restarts/);
  const on = helmTemplate('1.36.3', '--set', 'restarts.enabled=true', '--set', 'restarts.debounceSeconds=5');
  expect(on).toContain('- --restarts=true');
  expect(on).toContain('- --restart-debounce-seconds=5');
  expect(on).toContain('- --restart-min-interval-seconds=300');
  expect(on).toMatch(/kind: ClusterRole\n\s*metadata:\n\s*name: secret-store-sync-manager-restarts/);
  expect(on).toMatch(/resources: \[deployments, statefulsets, daemonsets\]\n\s*verbs: \[get, list, patch\]/);
  expect(on).toMatch(
    /kind: ValidatingAdmissionPolicyBinding\n\s*metadata:\n\s*name: secret-store-sync-workload-restarts/,
  );
  // 1.27 serves no policies: the RBAC without the policy.
  const old = helmTemplate('1.27.16', '--set', 'restarts.enabled=true');
  expect(old).toContain('secret-store-sync-manager-restarts');
  expect(old).not.toContain('workload-restarts');
});

test('the first sync rolls nothing; the pods start with the first value', async () => {
  const logs = await rolledOut('web');
  expect(logs).toEqual(['greeting=hello-1', 'greeting=hello-1']);
  await rolledOut('parts-reader');
  expect(await revision('web')).toBe(1);
  expect(await revision('parts-reader')).toBe(1);
  expect((await read('web')).spec!.template.metadata!.annotations?.[RESTARTED_FOR_ANNOTATION]).toBeUndefined();
});

test('a new Key Vault version rolls the opted-in Deployment once; its pods print the new value, the old value is nowhere', async () => {
  const before = (await k.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=web' })).items.map(
    (p) => p.metadata!.uid,
  );
  await azure.setSecret(vault, 'greeting', 'hello-2');
  await eventually(async () => ((await secretValue('app', 'greeting')) === 'hello-2' ? true : undefined), 30_000);
  await eventually(async () => ((await revision('web')) === 2 ? true : undefined), 60_000, 'the rollout');
  const logs = await rolledOut('web');
  expect(logs).toEqual(['greeting=hello-2', 'greeting=hello-2']);
  const after = (await k.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=web' })).items;
  expect(after.map((p) => p.metadata!.uid).filter((u) => before.includes(u))).toEqual([]);
  expect((await read('web')).spec!.template.metadata!.annotations?.[RESTARTED_FOR_ANNOTATION]).toMatch(
    /^sha256:[0-9a-f]{32}$/,
  );
  // Names and versions, never the value.
  const version = await azure.currentSecretVersion(vault, 'greeting');
  const [onWorkload] = await events('web', 'RolloutRestarted');
  expect(onWorkload).toContain(`SecretSync app (secret/greeting=${version})`);
  expect((await events('app', 'WorkloadRolledOut')).some((m) => m.includes('Rolled out Deployment web'))).toBe(true);
  expect(JSON.stringify(await k.core.listNamespacedEvent({ namespace: ns.name }))).not.toContain('hello-2');
  expect(
    await metric(managers[0]!, `secretsync_workload_restarts_total{namespace="${ns.name}",kind="Deployment"}`),
  ).toBe(1);
  // Unlabelled, or in another namespace: untouched.
  for (const [name, namespace] of [
    ['unlabelled', ns.name],
    ['elsewhere', other.name],
  ] as const) {
    const d = await read(name, namespace);
    expect({ name, generation: d.metadata!.generation, annotation: d.spec!.template.metadata!.annotations }).toEqual({
      name,
      generation: 1,
      annotation: undefined,
    });
  }
  expect(await revision('parts-reader')).toBe(1);
  // A StatefulSet and a DaemonSet naming it: rolled the same way (the same value: the same versions).
  const value = (await read('web')).spec!.template.metadata!.annotations![RESTARTED_FOR_ANNOTATION];
  await eventually(async () => {
    const sts = await apps.readNamespacedStatefulSet({ name: 'db', namespace: ns.name });
    const ds = await apps.readNamespacedDaemonSet({ name: 'agent', namespace: ns.name });
    const annotations = [sts, ds].map((w) => w.spec!.template.metadata?.annotations?.[RESTARTED_FOR_ANNOTATION]);
    return annotations.every((a) => a === value) ? true : undefined;
  }, 30_000);
  for (const kind of ['StatefulSet', 'DaemonSet']) {
    const series = `secretsync_workload_restarts_total{namespace="${ns.name}",kind="${kind}"}`;
    await eventually(async () => ((await metric(managers[0]!, series)) === 1 ? true : undefined), 10_000, series);
  }
}, 300_000);

test('three objects of one SecretSync changed one after another within the window: one rollout', async () => {
  const m = managers[0]!;
  const debounced = await metric(m, 'secretsync_workload_restarts_skipped_total{reason="debounced"}');
  const started = Date.now();
  for (const [object, key, value] of [
    ['part-a', 'a', 'a2'],
    ['part-b', 'b', 'b2'],
    ['part-c', 'c', 'c2'],
  ] as const) {
    await azure.setSecret(vault, object, value);
    await eventually(async () => ((await secretValue('parts', key)) === value ? true : undefined), 30_000);
  }
  // Each landed by its own sync (the test relies on the window being longer than that).
  expect(Date.now() - started).toBeLessThan(WINDOW_SECONDS * 1000);
  expect(await metric(m, 'secretsync_workload_restarts_skipped_total{reason="debounced"}')).toBeGreaterThanOrEqual(
    debounced + 2,
  );
  await eventually(async () => ((await revision('parts-reader')) === 2 ? true : undefined), 60_000, 'the rollout');
  expect(await rolledOut('parts-reader')).toEqual(['greeting=a2']);
  // Another window later, still the one rollout.
  await syncedAfter(windowFromNow());
  expect(await revision('parts-reader')).toBe(2);
  expect(await events('parts-reader', 'RolloutRestarted')).toHaveLength(1);
}, 300_000);

test('the manager SIGKILLed and restarted — with its hash key, then with a new one — rolls nothing', async () => {
  const revisions = [await revision('web'), await revision('parts-reader')];
  await managers[0]!.stop('SIGKILL');
  const second = await manager();
  await leading(second);
  await syncedAfter(windowFromNow());
  // A lost hash key: every Secret is rewritten once (a new hash, the same versions).
  await second.stop('SIGKILL');
  const third = await manager(randomBytes(32));
  await leading(third);
  await eventually(
    async () =>
      /"secretSync":"[^"]+\/app".*"reason":"UpdateValueChangeOrForceUpdateSucceeded"|"reason":"UpdateValueChangeOrForceUpdateSucceeded".*"secretSync":"[^"]+\/app"/.test(
        third.logs(),
      )
        ? true
        : undefined,
    60_000,
    'the rewrite under the new key',
  );
  await syncedAfter(windowFromNow());
  expect([await revision('web'), await revision('parts-reader')]).toEqual(revisions);
  expect(await metric(third, `secretsync_workload_restarts_total{namespace="${ns.name}",kind="Deployment"}`)).toBe(0);
}, 300_000);

test('a leader handover and a new version of the same value roll nothing; the new leader rolls for a real change', async () => {
  const [leader] = managers.slice(-1);
  const follower = await manager();
  expect(await leader!.stop('SIGTERM')).toBe(0);
  await leading(follower);
  // The same value under a new version: a new versions list, the same hash.
  await azure.setSecret(vault, 'greeting', 'hello-2');
  const version = await azure.currentSecretVersion(vault, 'greeting');
  await eventually(
    async () => {
      const ss = (await k.custom.getNamespacedCustomObject({ ...sync, namespace: ns.name, name: 'app' })) as SecretSync;
      return ss.status?.syncedObjectVersions?.some((v) => v.version === version) ? true : undefined;
    },
    30_000,
    'the new version synced',
  );
  await syncedAfter(windowFromNow());
  expect(await revision('web')).toBe(2);
  // Not blind: a real change through the new leader rolls.
  await azure.setSecret(vault, 'greeting', 'hello-3');
  await eventually(async () => ((await revision('web')) === 3 ? true : undefined), 90_000, 'the rollout');
  expect(await rolledOut('web')).toEqual(['greeting=hello-3', 'greeting=hello-3']);
}, 300_000);

test("as the manager's ServiceAccount, under the chart's policy: only the one annotation of a labelled workload may change", async () => {
  const kc = new KubeConfig();
  kc.loadFromFile(join(dir, 'manager.kubeconfig'));
  const asManager = kc.makeApiClient(AppsV1Api);
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const patch = (name: string, body: object) =>
    asManager.patchNamespacedDeployment({ name, namespace: ns.name, body, dryRun: 'All' }, merge).then(
      () => 'allowed',
      (e: { code?: number; body?: string }) => `${e.code}: ${String(e.body)}`,
    );
  const template = (annotations: Record<string, string>) => ({ spec: { template: { metadata: { annotations } } } });
  const image = { spec: { template: { spec: { containers: [{ name: 'app', image: 'evil:1' }] } } } };
  expect(await patch('web', template({ [RESTARTED_FOR_ANNOTATION]: 'sha256:0' }))).toBe('allowed');
  expect(await patch('web', image)).toMatch(/^403: .*may not change a workload's pod template/);
  expect(await patch('web', { spec: { replicas: 5 } })).toMatch(/^403: .*may not change a workload's spec/);
  expect(await patch('web', template({ other: 'x' }))).toMatch(/^403: .*only the pod-template annotation/);
  expect(await patch('web', { metadata: { labels: { [RESTART_LABEL]: 'false' } } })).toMatch(/^403: /);
  expect(await patch('web', { metadata: { annotations: { [RESTART_SECRETSYNCS_ANNOTATION]: 'other' } } })).toMatch(
    /^403: .*labels or annotations/,
  );
  expect(await patch('unlabelled', template({ [RESTARTED_FOR_ANNOTATION]: 'sha256:0' }))).toMatch(
    /^403: .*only restart workloads labelled/,
  );
  expect(
    await asManager.deleteNamespacedDeployment({ name: 'web', namespace: ns.name, dryRun: 'All' }).then(
      () => 'allowed',
      (e: { code?: number }) => e.code,
    ),
  ).toBe(403);
});
