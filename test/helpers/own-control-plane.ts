// A control plane of a test's own, for tests that restart or reconfigure it (restart, compaction):
// the project's CRDs, one namespace whose default ServiceAccount exists (the manager mints its
// tokens), in it the SecretProviderClass `spc` of the provider `test`, that provider serving
// `foo: v`, and a manager (as admin) watching the namespace — optionally through a relay the test
// can cut.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startControlPlane, yamlFilesIn, type ControlPlane } from '../env/control-plane.js';
import { createCa } from '../env/pki.js';
import { secretProviderClass } from './fixtures.js';
import { defaultServiceAccount } from './kube.js';
import { startManager, type RunningManager } from './manager.js';
import { startTestProvider, type TestProvider } from './provider.js';
import { startRelay, type Relay } from './tcp-proxy.js';

export interface OwnControlPlane {
  cp: ControlPlane;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  provider: TestProvider;
  manager: RunningManager;
  /** Between the manager and the apiserver, when asked for. */
  relay?: Relay;
  /** Stops all of it, the manager first. */
  stop(): Promise<void>;
}

export async function startOwnControlPlane(o: {
  namespace: string;
  /** Extra kube-apiserver flags (test/env/control-plane.ts). */
  apiserverArgs?: string[];
  managerArgs?: string[];
  /** The manager reaches the apiserver through a relay (test/helpers/tcp-proxy.ts). */
  relay?: boolean;
}): Promise<OwnControlPlane> {
  const stateDir = mkdtempSync(join(tmpdir(), `sss-${o.namespace}-`));
  const cp = await startControlPlane({
    stateDir,
    ca: createCa(),
    manifests: yamlFilesIn(join(repoRoot, 'deploy', 'crds')),
    apiserverArgs: o.apiserverArgs,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.info.kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = o.namespace;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await defaultServiceAccount(core, namespace);
  await custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'test', parameters: { prefix: '' } }),
  });
  const provider = await startTestProvider('test');
  provider.setState({ files: { foo: 'v' } });
  let kubeconfig = cp.info.kubeconfig;
  let relay: Relay | undefined;
  if (o.relay) {
    relay = await startRelay({ host: '127.0.0.1', port: Number(new URL(cp.info.server).port) });
    kubeconfig = join(stateDir, 'relayed-kubeconfig');
    writeFileSync(
      kubeconfig,
      readFileSync(cp.info.kubeconfig, 'utf8').replace(cp.info.server, `https://${relay.address}`),
    );
  }
  const manager = await startManager({ namespace, providerDir: provider.socketDir, kubeconfig, args: o.managerArgs });
  return {
    cp,
    core,
    custom,
    provider,
    manager,
    relay,
    async stop() {
      await manager.stop();
      await relay?.close();
      await provider.stop();
      await cp.stop();
    },
  };
}
