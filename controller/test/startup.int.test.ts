// Starting up in clusters that are not quite ready or not quite ours: the manager is ready only
// once its caches are listed (not when a list failed), and it works on the upstream SecretSync CRD
// left behind by the Secret Store extension (no status.observedGeneration) as on its own.
import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { repoRoot, startControlPlane, yamlFilesIn, type ControlPlane } from '../../test/env/control-plane.js';
import { serviceAccountKubeconfig } from '../../test/env/manager-identity.js';
import { createCa } from '../../test/env/pki.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { defaultServiceAccount, eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const spcBody = (parameters: Record<string, string>) =>
  secretProviderClass({ name: 'spc', provider: 'test', parameters });
const ssBody = (name: string) => secretSyncBody({ name, spc: 'spc', data: { key: 'foo' } });
const reconciles = async (m: RunningManager) =>
  [...(await m.metrics()).matchAll(/^secretsync_reconciles_total\{[^}]*\} (\d+)/gm)].reduce(
    (n, x) => n + Number(x[1]),
    0,
  );

describe('synced means listed', () => {
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let provider: TestProvider;
  let manager: RunningManager | undefined;
  afterAll(async () => {
    await manager?.stop();
    await provider?.stop();
    await ns?.dispose();
  });

  test('while the SecretProviderClass list fails the manager is not ready and blames no SecretSync; once it lists, it syncs', async () => {
    ns = await tempNamespace(k.core, 'unlisted');
    const rbac = k.kc.makeApiClient(RbacAuthorizationV1Api);
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'manager' } } });
    const rules = [
      { apiGroups: [''], resources: ['secrets', 'events'], verbs: ['create', 'patch'] },
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
      { apiGroups: [SYNC_GROUP], resources: ['secretsyncs'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [SYNC_GROUP], resources: ['secretsyncs/status'], verbs: ['patch'] },
    ];
    // Everything but the SecretProviderClass list, as when that CRD is not established yet.
    await rbac.createNamespacedRole({ namespace: ns.name, body: { metadata: { name: 'manager' }, rules } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'manager' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'manager' },
        subjects: [{ kind: 'ServiceAccount', name: 'manager', namespace: ns.name }],
      },
    });
    await eventually(
      async () =>
        (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
          ? true
          : undefined,
      30_000,
      'the default ServiceAccount',
    );
    provider = await startTestProvider('test');
    provider.setState({ files: { foo: 'listed' } });
    await k.custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      body: spcBody({ prefix: '' }),
    });
    await k.custom.createNamespacedCustomObject({ ...co, namespace: ns.name, body: ssBody('waiting') });
    const kubeconfig = await serviceAccountKubeconfig(
      loadStackInfo(),
      ns.name,
      'manager',
      join(mkdtempSync(join(tmpdir(), 'unlisted-')), 'kubeconfig'),
    );
    manager = await startManager({ namespace: ns.name, providerDir: provider.socketDir, kubeconfig, waitReady: false });
    // Refused the SecretProviderClass list, and again on the retry a second later.
    await eventually(
      async () =>
        manager!
          .logs()
          .split('\n')
          .filter((l) => l.includes('"what":"secretproviderclasses"')).length >= 2
          ? true
          : undefined,
      30_000,
      'the list to be refused twice',
    );
    expect((await fetch(manager.readyUrl)).status).toBe(503);
    const waiting = (await k.custom.getNamespacedCustomObject({
      ...co,
      namespace: ns.name,
      name: 'waiting',
    })) as SecretSync;
    expect(waiting.status?.conditions ?? []).toEqual([]);
    await rbac.patchNamespacedRole({
      namespace: ns.name,
      name: 'manager',
      body: [
        {
          op: 'add',
          path: '/rules/-',
          value: {
            apiGroups: ['secrets-store.csi.x-k8s.io'],
            resources: ['secretproviderclasses'],
            verbs: ['get', 'list', 'watch'],
          },
        },
      ],
    });
    await eventually(
      async () => ((await fetch(manager!.readyUrl)).ok ? true : undefined),
      60_000,
      'ready after the list',
    );
    const synced = await eventually(
      async () => {
        const ss = (await k.custom.getNamespacedCustomObject({
          ...co,
          namespace: ns.name,
          name: 'waiting',
        })) as SecretSync;
        return ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'CreateSucceeded' ? ss : undefined;
      },
      30_000,
      'the sync',
    );
    expect(synced.status!.conditions!.map((c) => c.reason)).not.toContain('ControllerSpcError');
    const events = (await k.core.listNamespacedEvent({ namespace: ns.name })).items.map((e) => e.reason);
    expect(events).not.toContain('ControllerSpcError');
  });
});

describe.each([
  ["this product's CRD", 'secret-store-sync'],
  ['the upstream CRD left behind by the Secret Store extension', 'upstream'],
] as const)('on %s', (_name, schema) => {
  let cp: ControlPlane | undefined;
  let custom: CustomObjectsApi;
  let namespace: string;
  let provider: TestProvider;
  let manager: RunningManager;
  let dispose: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    let kubeconfig: string;
    if (schema === 'upstream') {
      cp = await startControlPlane({
        stateDir: mkdtempSync(join(tmpdir(), 'sss-upstream-')),
        ca: createCa(),
        manifests: yamlFilesIn(join(repoRoot, 'test', 'fixtures', 'upstream-crds')),
      });
      kubeconfig = cp.info.kubeconfig;
      namespace = 'upstream';
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfig);
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await defaultServiceAccount(core, namespace);
      custom = kc.makeApiClient(CustomObjectsApi);
    } else {
      kubeconfig = loadStackInfo().k8s.kubeconfig;
      const ns = await tempNamespace(k.core, 'ours');
      namespace = ns.name;
      dispose = ns.dispose;
      await defaultServiceAccount(k.core, namespace);
      custom = k.custom;
    }
    provider = await startTestProvider('test');
    // A provider that takes 1.2 s: on the upstream schema this used to loop forever.
    provider.setState({ files: { foo: 'value' }, hangMs: 1_200 });
    await custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace,
      plural: 'secretproviderclasses',
      body: spcBody({ prefix: '' }),
    });
    manager = await startManager({
      namespace,
      providerDir: provider.socketDir,
      kubeconfig,
      args: ['--rotation-poll-interval-seconds=3600'],
    });
  }, 180_000);

  afterAll(async () => {
    await manager?.stop();
    await provider?.stop();
    await dispose();
    await cp?.stop();
  });

  test('one SecretSync is reconciled once, not again and again by its own status writes; the schema is named at startup', async () => {
    await custom.createNamespacedCustomObject({ ...co, namespace, body: ssBody('once') });
    const ss = await eventually(
      async () => {
        const o = (await custom.getNamespacedCustomObject({ ...co, namespace, name: 'once' })) as SecretSync;
        return o.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'CreateSucceeded' ? o : undefined;
      },
      30_000,
      'the first sync',
    );
    // The wait is the condition: a reconcile its own status write caused would come within a moment.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(await reconciles(manager)).toBe(1);
    expect(ss.status!.conditions!.find((c) => c.type === 'Ready')!.observedGeneration).toBe(ss.metadata.generation);
    if (schema === 'upstream') {
      expect(ss.status).not.toHaveProperty('observedGeneration');
      expect(manager.logs()).toContain('the installed SecretSync CRD is the upstream schema');
    } else {
      expect(ss.status!.observedGeneration).toBe(ss.metadata.generation);
      expect(manager.logs()).toContain('"schema":"secret-store-sync"');
    }
  });
});
