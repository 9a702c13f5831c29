// The Helm chart against the real apiserver: lint and render, install, run the manager with the
// chart's ServiceAccount token, and prove what its RBAC and admission policies refuse.
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../test/env/control-plane.js';
import { serviceAccountKubeconfig } from '../../test/env/manager-identity.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { servesAdmissionPolicies } from '../../test/env/versions.js';
import { apiStatus, eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const CHART = join(repoRoot, 'deploy', 'chart', 'secret-store-sync');
const RELEASE = 'chart-test';
const RELEASE_NS = 'sss-chart';
const SA = 'secret-store-sync-manager';
const MANAGER_USER = `system:serviceaccount:${RELEASE_NS}:${SA}`;
/**
 * The policies' API to install instead of the one the cluster's discovery picks (the chart's
 * admissionPolicies.apiVersion): `v1beta1`, on a 1.30 stack that serves it too, proves the
 * policies 1.28-1.29 get (README, Kubernetes versions and K3s).
 */
const ADMISSION_API = process.env.SSS_ADMISSION_API_VERSION;
const info = loadStackInfo();
const k = kube();
const helmBin = execFileSync('bash', [join(repoRoot, 'test', 'env', 'build-helm.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
})
  .trim()
  .split('\n')
  .pop()!;
const helm = (...args: string[]) =>
  execFileSync(helmBin, [...args, '--kubeconfig', info.k8s.kubeconfig], { encoding: 'utf8' });
const kubectl = (...args: string[]) =>
  spawnSync('kubectl', ['--kubeconfig', info.k8s.kubeconfig, ...args], { encoding: 'utf8' });
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let asManager: CoreV1Api;
let provider: TestProvider;
let manager: RunningManager | undefined;
let managerKubeconfig: string;

/** The key the chart generated, as the pod would mount it. */
async function chartHashKey(): Promise<Buffer> {
  const s = await k.core.readNamespacedSecret({ name: 'secret-store-sync-hash-key', namespace: RELEASE_NS });
  return Buffer.from(s.data!.key!, 'base64');
}
const denial = (e: unknown) => ({ code: apiStatus(e), message: String((e as { body?: string }).body ?? e) });
async function refused(p: Promise<unknown>): Promise<{ code?: number; message: string }> {
  return p.then(() => ({ code: 200, message: 'allowed' }), denial);
}
/** Bindings take effect asynchronously; retry until the policy answers. */
async function refusedEventually(f: () => Promise<unknown>, text: string) {
  return eventually(
    async () => {
      const r = await refused(f());
      return r.message.includes(text) ? r : undefined;
    },
    30_000,
    `a denial saying "${text}"`,
  );
}

/**
 * The admission policies' tests where the cluster serves their API (1.30 and later). Before it, the
 * same test asserts the chart installed none: README's table of protections by version says which
 * guarantees then rest on the manager alone.
 */
function policyTest(name: string, fn: () => Promise<void>) {
  test(name, async () => {
    if (servesAdmissionPolicies(info.k8s.version)) return fn();
    expect(helm('get', 'manifest', RELEASE, '--namespace', RELEASE_NS)).not.toMatch(/ValidatingAdmissionPolicy/);
  });
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'chart');
  helm(
    'install',
    RELEASE,
    CHART,
    '--namespace',
    RELEASE_NS,
    '--create-namespace',
    '--set',
    'rotationPollIntervalInSeconds=3600',
    ...(ADMISSION_API ? ['--set', `admissionPolicies.apiVersion=${ADMISSION_API}`] : []),
  );
  managerKubeconfig = await serviceAccountKubeconfig(
    info,
    RELEASE_NS,
    SA,
    join(mkdtempSync(join(tmpdir(), 'chart-')), 'kubeconfig'),
  );
  const kc = new KubeConfig();
  kc.loadFromFile(managerKubeconfig);
  asManager = kc.makeApiClient(CoreV1Api);
  provider = await startTestProvider('test', undefined, { validateTokensAudience: ['api://AzureADTokenExchange'] });
  provider.setState({ files: { foo: 'from-the-provider' } });
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
}, 300_000);

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await ns?.dispose();
  spawnSync(helmBin, ['uninstall', RELEASE, '--namespace', RELEASE_NS, '--kubeconfig', info.k8s.kubeconfig]);
});

test('helm lint --strict passes; helm template needs no --kube-version', () => {
  expect(helm('lint', '--strict', CHART)).toContain('1 chart(s) linted, 0 chart(s) failed');
  // Without --kube-version helm assumes the Kubernetes of its client-go, as a released helm does.
  const kinds = parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS))
    .map((d) => (d.toJSON() as { kind?: string } | null)?.kind)
    .filter(Boolean);
  expect(new Set(kinds)).toEqual(
    new Set([
      'ServiceAccount',
      'Secret',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'NetworkPolicy',
      'Deployment',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]),
  );
});

test('values.schema.json: a misspelt or out-of-range value fails helm template and helm install, naming it; nothing is installed', () => {
  const run = (...args: string[]) =>
    spawnSync(helmBin, [...args, '--kubeconfig', info.k8s.kubeconfig], { encoding: 'utf8' });
  const template = run('template', RELEASE, CHART, '--set', 'rotationPollIntervalInSecond=60');
  expect(template.status).not.toBe(0);
  expect(template.stderr).toContain("at '': additional properties 'rotationPollIntervalInSecond' not allowed");
  const install = run(
    'install',
    'chart-typo',
    CHART,
    '--namespace',
    RELEASE_NS,
    '--set',
    'provider.maxObjectPerMount=10',
    '--set',
    'workers=0',
    '--set',
    'logLevel=verbose',
  );
  expect(install.status).not.toBe(0);
  for (const problem of [
    "at '/provider': additional properties 'maxObjectPerMount' not allowed",
    "at '/workers': minimum: got 0, want 1",
    "at '/logLevel': value must be one of 'error', 'warn', 'info', 'debug'",
  ])
    expect(install.stderr).toContain(problem);
  expect(run('status', 'chart-typo', '--namespace', RELEASE_NS).status).not.toBe(0);
});

test("NOTES: the next steps name this release's Deployment and its pods' labels", () => {
  const notes = helm('get', 'notes', RELEASE, '--namespace', RELEASE_NS);
  expect(notes).toContain(`kubectl -n ${RELEASE_NS} rollout status deployment/${RELEASE}`);
  expect(notes).toContain('kubectl -n <namespace> describe secretsync <name>');
  expect(notes).toContain(`kubectl -n ${RELEASE_NS} logs deployment/${RELEASE} -c provider-azure-installer`);
  expect(notes).toContain('"Troubleshooting"');
  const installed = JSON.parse(kubectl('-n', RELEASE_NS, 'get', 'deployment', RELEASE, '-o', 'json').stdout) as {
    spec: { selector: { matchLabels: Record<string, string> } };
  };
  const selectors = [...notes.matchAll(/ -l (\S+)/g)].map((m) => m[1]);
  expect(selectors.length).toBeGreaterThan(0);
  // Each selector is part of the Deployment's own, so it lists this release's pods.
  for (const selector of selectors)
    expect(installed.spec.selector.matchLabels).toMatchObject(
      Object.fromEntries(selector!.split(',').map((kv) => kv.split('='))),
    );
});

test("host network: the Deployment stops the old pod before it starts the new one (their ports are the node's); otherwise a surge", () => {
  type Deployment = { kind: string; spec: { strategy?: unknown } };
  const strategy = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, ...set))
      .map((d) => d.toJSON() as Deployment)
      .find((d) => d?.kind === 'Deployment')!.spec.strategy;
  expect(strategy()).toBeUndefined();
  expect(strategy('--set', 'hostNetwork=true', '--set', 'k8sServiceHost=10.1.2.3')).toEqual({
    type: 'Recreate',
  });
});

test('the pod has the two named containers, an emptyDir socket, and hardening', () => {
  const docs = parseAllDocuments(
    helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3'),
  ).map((d) => d.toJSON() as { kind: string; spec?: { template?: { spec?: Record<string, unknown> } } });
  const pod = docs.find((d) => d?.kind === 'Deployment')!.spec!.template!.spec! as {
    automountServiceAccountToken: boolean;
    securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
    containers: {
      name: string;
      args: string[];
      securityContext: { readOnlyRootFilesystem: boolean; capabilities: { drop: string[] } };
      volumeMounts: { name: string; mountPath: string }[];
    }[];
    volumes: { name: string; emptyDir?: object; hostPath?: object }[];
  };
  expect(pod.containers.map((c) => c.name)).toEqual(['manager', 'provider-azure-installer']);
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  for (const c of pod.containers)
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  expect(pod.volumes.find((v) => v.name === 'provider-sockets')).toEqual({ name: 'provider-sockets', emptyDir: {} });
  expect(pod.volumes.some((v) => v.hostPath)).toBe(false);
  // Only the manager gets the API token.
  expect(pod.containers[0]!.volumeMounts.some((m) => m.name === 'api-token')).toBe(true);
  expect(pod.containers[1]!.volumeMounts.some((m) => m.name === 'api-token')).toBe(false);
  expect(pod.containers[0]!.args).toContain('--rotation-poll-interval-seconds=3600');
  expect(pod.containers[1]!.args).toContain('--endpoint=unix:///provider/azure.sock');
});

test("events are core v1 (the upstream chart's RBAC); no token audiences: no token flag value, no token permission", () => {
  type Doc = {
    kind: string;
    rules?: { apiGroups: string[]; resources: string[] }[];
    spec?: { template?: { spec?: { containers: { args: string[] }[] } } };
  };
  const render = (...set: string[]) =>
    parseAllDocuments(
      helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set),
    ).map((d) => d.toJSON() as Doc);
  const rules = (docs: Doc[]) =>
    docs.find((d) => d?.kind === 'ClusterRole' && d.rules?.some((r) => r.resources.includes('secrets')))!.rules!;
  const defaults = render();
  expect(rules(defaults)).toContainEqual(expect.objectContaining({ apiGroups: [''], resources: ['events'] }));
  expect(rules(defaults).some((r) => r.apiGroups.includes('events.k8s.io'))).toBe(false);
  expect(rules(defaults).some((r) => r.resources.includes('serviceaccounts/token'))).toBe(true);
  expect(defaults.find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!.containers[0]!.args).toContain(
    '--provider-token-audiences=azure=api://AzureADTokenExchange',
  );
  const tokenless = render('--set', 'provider.tokenAudiences=null');
  expect(rules(tokenless).some((r) => r.resources.includes('serviceaccounts/token'))).toBe(false);
  expect(tokenless.find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!.containers[0]!.args).toContain(
    '--provider-token-audiences=azure=',
  );
  // The old value, which gave every provider the same tokens, is refused (by the schema; without
  // it, by the template, naming what replaces it).
  const old = spawnSync(
    helmBin,
    ['template', RELEASE, CHART, '--kube-version', '1.36.3', '--set', 'tokenAudiences[0]=vault'],
    { encoding: 'utf8' },
  );
  expect(old.status).not.toBe(0);
  expect(old.stderr).toContain("additional properties 'tokenAudiences' not allowed");
  const unchecked = spawnSync(
    helmBin,
    [
      'template',
      RELEASE,
      CHART,
      '--kube-version',
      '1.36.3',
      '--skip-schema-validation',
      '--set',
      'tokenAudiences[0]=vault',
    ],
    { encoding: 'utf8' },
  );
  expect(unchecked.stderr).toContain('tokenAudiences is gone');
  expect(unchecked.stderr).toContain('provider.tokenAudiences');
});

test('extraProviders: a container per provider on the shared socket folder, restrictive by default, its audiences in the manager, RBAC and token policy', () => {
  interface Container {
    name: string;
    image: string;
    args?: string[];
    env: { name: string; value?: string }[];
    securityContext: Record<string, unknown>;
    volumeMounts: { name: string; mountPath: string }[];
  }
  type Doc = {
    kind: string;
    metadata: { name: string };
    rules?: { resources: string[] }[];
    spec?: {
      validations?: { expression: string }[];
      template?: { spec?: { containers: Container[]; securityContext: Record<string, unknown> } };
    };
  };
  const valuesFile = join(mkdtempSync(join(tmpdir(), 'chart-values-')), 'values.yaml');
  writeFileSync(
    valuesFile,
    JSON.stringify({
      provider: { tokenAudiences: [] },
      extraProviders: [
        {
          name: 'vault',
          image: 'vault-csi-provider:1',
          args: ['--endpoint=$(PROVIDER_SOCKET)'],
          tokenAudiences: ['vault'],
        },
        { name: 'e2e', image: 'e2e-provider:1', securityContext: { runAsUser: 0, runAsNonRoot: false } },
      ],
    }),
  );
  const docs = parseAllDocuments(
    helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', '-f', valuesFile),
  ).map((d) => d.toJSON() as Doc);
  const pod = docs.find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!;
  const byName = (n: string) => pod.containers.find((c) => c.name === n)!;
  const vault = byName('provider-vault');
  expect(vault.image).toBe('vault-csi-provider:1');
  // The socket path in the variable its args name; kubelet expands $(PROVIDER_SOCKET).
  expect(vault.env).toContainEqual({ name: 'PROVIDER_SOCKET', value: '/provider/vault.sock' });
  expect(vault.args).toEqual(['--endpoint=$(PROVIDER_SOCKET)']);
  for (const c of [vault, byName('provider-e2e')])
    expect(c.volumeMounts).toContainEqual({ name: 'provider-sockets', mountPath: '/provider' });
  expect(vault.securityContext).toEqual({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
  // A provider's own securityContext is merged over the default, not in place of it.
  expect(byName('provider-e2e').securityContext).toEqual({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    runAsUser: 0,
    runAsNonRoot: false,
  });
  // No API token for a provider.
  for (const c of [vault, byName('provider-e2e')])
    expect(c.volumeMounts.some((m) => m.name === 'api-token')).toBe(false);
  // Audiences: azure none (as set), vault its own, e2e none; RBAC and the policy allow exactly vault's.
  const managerArgs = byName('manager').args!.filter((a) => a.startsWith('--provider-token-audiences='));
  expect(managerArgs).toEqual(['--provider-token-audiences=azure=', '--provider-token-audiences=vault=vault']);
  expect(
    docs.some((d) => d?.kind === 'ClusterRole' && d.rules?.some((r) => r.resources.includes('serviceaccounts/token'))),
  ).toBe(true);
  const tokenPolicy = docs.find(
    (d) => d?.kind === 'ValidatingAdmissionPolicy' && d.metadata.name.endsWith('-token-requests'),
  )!;
  expect(tokenPolicy.spec!.validations!.map((v) => v.expression)).toContainEqual(
    "size(object.spec.audiences) == 1 && object.spec.audiences[0] in ['vault']",
  );
  // Names that are not a socket's, or taken, and a provider without an image are refused.
  for (const [set, message] of [
    ['extraProviders[0].name=Vault_1,extraProviders[0].image=x', "name 'Vault_1' must be 1-30 lowercase"],
    ['extraProviders[0].name=azure,extraProviders[0].image=x', "name 'azure' is taken"],
    [
      'extraProviders[0].name=v,extraProviders[0].image=x,extraProviders[1].name=v,extraProviders[1].image=y',
      "name 'v' is taken",
    ],
    ['extraProviders[0].name=v', "'v' needs an image"],
  ]) {
    const r = spawnSync(helmBin, ['template', RELEASE, CHART, '--kube-version', '1.36.3', '--set', set!], {
      encoding: 'utf8',
    });
    expect([set, r.status === 0 ? 'rendered' : r.stderr]).toEqual([set, expect.stringContaining(message!)]);
  }
});

test('provider flags from the chart: node identity and service principals off by default; when on, only for listed namespaces and the identities bound to them; cloud files only from a ConfigMap; change events and their share window only with a queue', () => {
  type Doc = {
    kind: string;
    spec?: {
      template?: {
        spec?: {
          containers: { name: string; args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
          volumes: { name: string; configMap?: { name: string } }[];
        };
      };
    };
  };
  const pod = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set))
      .map((d) => d.toJSON() as Doc)
      .find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!;
  const providerOf = (p: ReturnType<typeof pod>) => p.containers.find((c) => c.name === 'provider-azure-installer')!;
  const defaults = providerOf(pod());
  expect(defaults.args).toEqual(
    expect.arrayContaining([
      '--allow-node-identity=false',
      '--allow-service-principal=false',
      '--max-objects-per-mount=256',
      '--max-reads-per-mount=1000',
    ]),
  );
  expect(defaults.args.some((a) => a.startsWith('--cloud-env-dir') || a.startsWith('--node-identity-namespaces'))).toBe(
    false,
  );
  const on = pod(
    '--set',
    'provider.allowNodeIdentity=true',
    '--set',
    'provider.nodeIdentityNamespaces={infra,monitoring}',
    '--set',
    'provider.cloudEnvConfigMap=azure-stack-clouds',
  );
  expect(providerOf(on).args).toEqual(
    expect.arrayContaining([
      '--allow-node-identity=true',
      '--node-identity-namespaces=infra,monitoring',
      '--cloud-env-dir=/etc/secret-store-sync/clouds',
    ]),
  );
  expect(providerOf(on).volumeMounts).toContainEqual(
    expect.objectContaining({ name: 'cloud-envs', mountPath: '/etc/secret-store-sync/clouds' }),
  );
  expect(on.volumes).toContainEqual({ name: 'cloud-envs', configMap: { name: 'azure-stack-clouds' } });
  // Each namespace gets only the node identities bound to it; a bare one, the default identity.
  const [kubelet, addon] = ['6f1c2a3b-0000-4000-8000-00000000a001', '6f1c2a3b-0000-4000-8000-00000000a002'];
  const bound = pod(
    '--set',
    'provider.allowNodeIdentity=true',
    '--set',
    'provider.nodeIdentityNamespaces={infra}',
    '--set-json',
    `provider.nodeIdentityBindings={"infra":["${kubelet}"],"apps":["${addon}","default"],"ops":["*"]}`,
  );
  expect(providerOf(bound).args).toContain(
    `--node-identity-namespaces=infra,apps=${addon},apps=default,infra=${kubelet},ops=*`,
  );
  expect(
    providerOf(
      pod(
        '--set',
        'provider.allowNodeIdentity=true',
        '--set-json',
        `provider.nodeIdentityBindings={"infra":["${kubelet}"]}`,
      ),
    ).args,
  ).toContain(`--node-identity-namespaces=infra=${kubelet}`);
  expect(() => pod('--set', 'provider.allowNodeIdentity=true')).toThrow(
    /needs provider.nodeIdentityNamespaces or provider.nodeIdentityBindings/,
  );
  // The share window with events is passed only when events are on.
  expect(defaults.args.filter((a) => /^--(change-queue|read-share-seconds-with-events)/.test(a))).toEqual([]);
  const queueUrl = 'https://acct.queue.core.windows.net/kv-events';
  const events = pod(
    ...['--set', `provider.changeEvents.queueUrl=${queueUrl}`, '--set', `provider.changeEvents.clientId=${kubelet}`],
    ...['--set', `provider.changeEvents.tenantId=${addon}`, '--set', 'provider.changeEvents.readShareSeconds=30'],
  );
  expect(providerOf(events).args).toEqual(
    expect.arrayContaining([
      `--change-queue-url=${queueUrl}`,
      '--read-share-seconds=2',
      '--read-share-seconds-with-events=30',
    ]),
  );
});

test("the manager's share of workers per namespace and its expiry-check floor come from the chart", () => {
  const managerArgs = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set))
      .map(
        (d) =>
          d.toJSON() as {
            kind: string;
            spec?: { template?: { spec?: { containers: { name: string; args: string[] }[] } } };
          },
      )
      .find((d) => d?.kind === 'Deployment')!
      .spec!.template!.spec!.containers.find((c) => c.name === 'manager')!.args;
  const defaults = managerArgs();
  expect(defaults).toContain('--expiry-check-min-interval-seconds=300');
  // Unset, the manager takes half of --workers.
  expect(defaults.some((a) => a.startsWith('--workers-per-namespace'))).toBe(false);
  expect(managerArgs('--set', 'workersPerNamespace=3', '--set', 'expiryCheckMinIntervalSeconds=600')).toEqual(
    expect.arrayContaining(['--workers-per-namespace=3', '--expiry-check-min-interval-seconds=600']),
  );
});

test("host network: the apiserver's address for the manager only, required; the provider's Entra host and extra CAs; hostAliases", () => {
  type Container = {
    name: string;
    env?: { name: string; value?: string }[];
    volumeMounts: { name: string; mountPath: string }[];
  };
  type Spec = {
    hostNetwork?: boolean;
    hostAliases?: unknown[];
    containers: Container[];
    volumes: { name: string; configMap?: { name: string } }[];
  };
  const render = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set))
      .map((d) => d.toJSON() as { kind: string; spec?: { template?: { spec?: Spec } } })
      .find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!;
  const envOf = (c: Container) =>
    Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  const defaults = render();
  expect(defaults.hostNetwork).toBeUndefined();
  expect(defaults.hostAliases).toBeUndefined();
  for (const c of defaults.containers) expect(Object.keys(envOf(c))).toEqual([]);
  expect(() => render('--set', 'hostNetwork=true')).toThrow(/hostNetwork=true needs k8sServiceHost/);
  const on = render(
    '--set',
    'hostNetwork=true',
    '--set',
    'k8sServiceHost=10.1.2.3',
    '--set-string',
    'k8sServicePort=6443',
    '--set',
    'provider.authorityHost=https://login.example',
    '--set',
    'provider.caBundleConfigMap=corp-ca',
    '--set',
    'hostAliases[0].ip=10.9.9.9',
    '--set',
    'hostAliases[0].hostnames[0]=my-kv.vault.azure.net',
  );
  expect(on.hostNetwork).toBe(true);
  expect(on.hostAliases).toEqual([{ ip: '10.9.9.9', hostnames: ['my-kv.vault.azure.net'] }]);
  const [manager, provider] = on.containers;
  expect(envOf(manager!)).toEqual({ KUBERNETES_SERVICE_HOST: '10.1.2.3', KUBERNETES_SERVICE_PORT: '6443' });
  expect(envOf(provider!)).toEqual({
    AZURE_AUTHORITY_HOST: 'https://login.example',
    NODE_EXTRA_CA_CERTS: '/etc/secret-store-sync/ca/ca.crt',
  });
  expect(provider!.volumeMounts).toContainEqual(
    expect.objectContaining({ name: 'ca-bundle', mountPath: '/etc/secret-store-sync/ca' }),
  );
  expect(manager!.volumeMounts.some((m) => m.name === 'ca-bundle')).toBe(false);
  expect(on.volumes).toContainEqual(
    expect.objectContaining({ name: 'ca-bundle', configMap: expect.objectContaining({ name: 'corp-ca' }) }),
  );
});

test('NetworkPolicy, on by default: ingress to the two metrics ports from the named peers only; [] admits no one; installed as rendered', () => {
  type Policy = {
    kind: string;
    metadata: { name: string };
    spec: {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      ingress?: { from: unknown[]; ports: { protocol: string; port: number }[] }[];
    };
  };
  const policies = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set))
      .map((d) => d.toJSON() as Policy)
      .filter((d) => d?.kind === 'NetworkPolicy');
  const [byDefault, ...more] = policies();
  expect(more).toEqual([]);
  expect(byDefault!.spec.podSelector.matchLabels).toEqual({
    'app.kubernetes.io/name': 'secret-store-sync',
    'app.kubernetes.io/instance': RELEASE,
  });
  expect(byDefault!.spec.policyTypes).toEqual(['Ingress']);
  // One rule: the metrics ports, from Prometheus pods in the namespace named monitoring. Health
  // ports appear nowhere: only the node (the kubelet's probes) reaches them.
  expect(byDefault!.spec.ingress).toEqual([
    {
      from: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
        },
      ],
      ports: [
        { protocol: 'TCP', port: 8085 },
        { protocol: 'TCP', port: 8898 },
      ],
    },
  ]);
  const named = policies(
    '--set',
    'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=observability',
    '--set',
    'metrics.managerPort=9085',
  )[0]!;
  expect(named.spec.ingress).toEqual([
    {
      from: [{ namespaceSelector: { matchLabels: { team: 'observability' } } }],
      ports: [
        { protocol: 'TCP', port: 9085 },
        { protocol: 'TCP', port: 8898 },
      ],
    },
  ]);
  // No peers: an Ingress policy with no rule, which denies every connection.
  const closed = policies('--set', 'networkPolicy.metricsFrom=null')[0]!;
  expect(closed.spec).toEqual({ podSelector: byDefault!.spec.podSelector, policyTypes: ['Ingress'] });
  expect(policies('--set', 'networkPolicy.enabled=false')).toEqual([]);
  expect(() =>
    policies('--set', 'networkPolicy.metricsFrom=null', '--set', 'monitoring.podMonitor.enabled=true'),
  ).toThrow(/monitoring.podMonitor.enabled needs networkPolicy.metricsFrom/);
  // beforeAll's helm install: the apiserver took it as rendered.
  const installed = JSON.parse(
    kubectl('get', 'networkpolicy', RELEASE, '-n', RELEASE_NS, '-o', 'json').stdout,
  ) as Policy;
  expect(installed.spec).toEqual(byDefault!.spec);
});

test("health and metrics bind apart: the pod network on 0.0.0.0; with hostNetwork health on the node's 127.0.0.1 (probes follow), metrics on the node's address", () => {
  type Probe = { httpGet: { path: string; port: string; host?: string } };
  type Container = {
    name: string;
    args: string[];
    env?: { name: string; valueFrom?: { fieldRef: { fieldPath: string } } }[];
    livenessProbe: Probe;
    readinessProbe?: Probe;
  };
  const containers = (...set: string[]) =>
    parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3', ...set))
      .map((d) => d.toJSON() as { kind: string; spec?: { template?: { spec?: { containers: Container[] } } } })
      .find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!.containers;
  const binds = (c: Container) => c.args.filter((a) => /-bind-address=/.test(a));
  const probeHosts = (c: Container) => [c.livenessProbe, c.readinessProbe].filter(Boolean).map((p) => p!.httpGet.host);
  const hostIpEnv = (c: Container) =>
    (c.env ?? []).filter((e) => e.name === 'HOST_IP').map((e) => e.valueFrom?.fieldRef.fieldPath);
  const [manager, provider] = containers();
  expect(binds(manager!)).toEqual(['--health-bind-address=0.0.0.0', '--metrics-bind-address=0.0.0.0']);
  expect(binds(provider!)).toEqual(['--healthz-bind-address=0.0.0.0', '--metrics-bind-address=0.0.0.0']);
  // The kubelet probes the pod IP.
  for (const c of [manager!, provider!]) expect(probeHosts(c).every((h) => h === undefined)).toBe(true);
  const hostNetwork = ['--set', 'hostNetwork=true', '--set', 'k8sServiceHost=10.1.2.3'];
  const [hnManager, hnProvider] = containers(...hostNetwork);
  expect(binds(hnManager!)).toEqual(['--health-bind-address=127.0.0.1', '--metrics-bind-address=$(HOST_IP)']);
  expect(binds(hnProvider!)).toEqual(['--healthz-bind-address=127.0.0.1', '--metrics-bind-address=$(HOST_IP)']);
  for (const c of [hnManager!, hnProvider!]) {
    expect(probeHosts(c)).toEqual(c.name === 'manager' ? ['127.0.0.1', '127.0.0.1'] : ['127.0.0.1']);
    expect(hostIpEnv(c)).toEqual(['status.hostIP']);
  }
  const [chosen] = containers(...hostNetwork, '--set', 'metrics.bindAddress=127.0.0.1');
  expect(binds(chosen!)).toEqual(['--health-bind-address=127.0.0.1', '--metrics-bind-address=127.0.0.1']);
  expect(hostIpEnv(chosen!)).toEqual([]);
});

test('docker-compose.yml runs the same two containers as the chart: socket path and arguments', () => {
  const compose = parseAllDocuments(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'))[0]!.toJSON() as {
    services: Record<string, { command: string[]; volumes: string[] }>;
  };
  const rendered = parseAllDocuments(
    helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, '--kube-version', '1.36.3'),
  ).map(
    (d) =>
      d.toJSON() as {
        kind: string;
        spec?: {
          template?: {
            spec?: {
              containers: { name: string; args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
            };
          };
        };
      },
  );
  const containers = rendered.find((d) => d?.kind === 'Deployment')!.spec!.template!.spec!.containers;
  expect(Object.keys(compose.services).sort()).toEqual(containers.map((c) => c.name).sort());
  const provider = containers.find((c) => c.name === 'provider-azure-installer')!;
  expect(compose.services['provider-azure-installer']!.command).toEqual(provider.args);
  const manager = containers.find((c) => c.name === 'manager')!;
  // Split at the first '=' only: --provider-token-audiences=azure=api://… keeps its value whole.
  const byFlag = (args: string[]) =>
    Object.fromEntries(args.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const composeFlags = byFlag(compose.services.manager!.command);
  const chartFlags = byFlag(manager.args);
  for (const flag of [
    '--provider-dir',
    '--provider-token-audiences',
    '--rotation-poll-interval-seconds',
    '--workers',
    '--log-level',
    '--health-port',
    '--health-bind-address',
    '--metrics-bind-address',
  ])
    expect([flag, composeFlags[flag]]).toEqual([flag, chartFlags[flag]]);
  // Both containers share the socket folder at /provider, where the provider listens.
  for (const c of containers)
    expect(c.volumeMounts).toContainEqual({ name: 'provider-sockets', mountPath: '/provider' });
  for (const svc of Object.values(compose.services)) expect(svc.volumes).toContain('provider-sockets:/provider');
  expect(provider.args).toContain(`--endpoint=unix://${chartFlags['--provider-dir']}/azure.sock`);
});

test('the policies take the API the cluster serves: v1, else v1beta1, else none, whatever its release', () => {
  const VAP = 'admissionregistration.k8s.io/v1beta1/ValidatingAdmissionPolicy';
  const policyApis = (...args: string[]) => [
    ...new Set(
      parseAllDocuments(helm('template', RELEASE, CHART, '--namespace', RELEASE_NS, ...args))
        .map((d) => d.toJSON() as { kind?: string; apiVersion?: string } | null)
        .filter((d) => d?.kind?.startsWith('ValidatingAdmissionPolicy'))
        .map((d) => d!.apiVersion),
    ),
  ];
  const v1 = 'admissionregistration.k8s.io/v1';
  const v1beta1 = 'admissionregistration.k8s.io/v1beta1';
  // Without a cluster, the release decides (helm's own list of APIs names no kinds).
  expect(policyApis('--kube-version', '1.30.0')).toEqual([v1]);
  expect(policyApis('--kube-version', '1.29.0')).toEqual([]);
  expect(policyApis('--kube-version', '1.29.0', '--api-versions', VAP)).toEqual([v1beta1]);
  // A cluster's discovery lists kinds (v1/Namespace): then it alone decides, even on 1.30+ with v1 off.
  expect(policyApis('--kube-version', '1.30.0', '--api-versions', 'v1/Namespace', '--api-versions', VAP)).toEqual([
    v1beta1,
  ]);
  expect(policyApis('--kube-version', '1.31.0', '--api-versions', 'v1/Namespace')).toEqual([]);
  expect(policyApis('--kube-version', '1.27.0', '--set', 'admissionPolicies.apiVersion=v1beta1')).toEqual([v1beta1]);
});

test('the policies installed are of the API the cluster serves, or of admissionPolicies.apiVersion', () => {
  const installed = parseAllDocuments(helm('get', 'manifest', RELEASE, '--namespace', RELEASE_NS))
    .map((d) => d.toJSON() as { kind?: string; apiVersion?: string } | null)
    .filter((d) => d?.kind?.startsWith('ValidatingAdmissionPolicy'))
    .map((d) => d!.apiVersion);
  const expected = ADMISSION_API ?? (servesAdmissionPolicies(info.k8s.version) ? 'v1' : undefined);
  // Four policies, each with its binding.
  expect(installed).toEqual(expected ? Array(8).fill(`admissionregistration.k8s.io/${expected}`) : []);
});

test('the committed plain manifests are what the chart renders; the policies in a file of their own', () => {
  const files = ['secret-store-sync.yaml', 'admission-policies.yaml'].map((f) =>
    join(repoRoot, 'deploy', 'manifests', f),
  );
  const committed = files.map((f) => readFileSync(f, 'utf8'));
  execFileSync('bash', [join(repoRoot, 'deploy', 'render-manifests.sh')], { cwd: repoRoot, stdio: 'pipe' });
  const rendered = files.map((f) => readFileSync(f, 'utf8'));
  files.forEach((f, i) => writeFileSync(f, committed[i]!));
  expect(rendered).toEqual(committed);
  // A 1.27-1.29 cluster has no ValidatingAdmissionPolicy kind: the main file must apply there.
  expect(committed[0]).not.toMatch(/kind: ValidatingAdmissionPolicy/);
  expect(committed[1]!.match(/^kind: ValidatingAdmissionPolicy$/gm)).toHaveLength(4);
});

test("the manager, with the chart's ServiceAccount token, syncs a SecretSync", async () => {
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    kubeconfig: managerKubeconfig,
    hashKey: await chartHashKey(),
    // The chart's audience, for the test provider: its tokens pass the chart's admission policy.
    args: ['--provider-token-audiences=test=api://AzureADTokenExchange'],
  });
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name: 'spc', provider: 'test', parameters: { prefix: '' } }),
  });
  await k.custom.createNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    body: secretSyncBody({ name: 'synced', spc: 'spc', data: { key: 'foo' } }),
  });
  const s = await eventually(
    async () => k.core.readNamespacedSecret({ name: 'synced', namespace: ns.name }).catch(() => undefined),
    30_000,
    'the Secret',
  );
  expect(Buffer.from(s.data!.key!, 'base64').toString()).toBe('from-the-provider');
});

test('RBAC: the manager may create and patch Secrets but not get, list, watch or delete them', async () => {
  for (const verb of ['get', 'list', 'watch', 'delete'])
    expect(kubectl('auth', 'can-i', verb, 'secrets', '-n', ns.name, '--as', MANAGER_USER).stdout.trim()).toBe('no');
  for (const verb of ['create', 'patch'])
    expect(kubectl('auth', 'can-i', verb, 'secrets', '-n', ns.name, '--as', MANAGER_USER).stdout.trim()).toBe('yes');
  expect(await refused(asManager.readNamespacedSecret({ name: 'synced', namespace: ns.name }))).toMatchObject({
    code: 403,
  });
  expect(await refused(asManager.deleteNamespacedSecret({ name: 'synced', namespace: ns.name }))).toMatchObject({
    code: 403,
  });
});

test('user roles aggregate into the built-in edit and view roles', async () => {
  const can = (verb: string, user: string) =>
    kubectl('auth', 'can-i', verb, 'secretsyncs.secret-sync.x-k8s.io', '-n', ns.name, '--as', user).stdout.trim();
  const rbac = (await import('@kubernetes/client-node')).RbacAuthorizationV1Api;
  const api = k.kc.makeApiClient(rbac);
  for (const [user, role] of [
    ['alice', 'edit'],
    ['bob', 'view'],
  ]) {
    await api.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: `${user}-${role}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role! },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user! }],
      },
    });
  }
  await eventually(
    async () => (can('create', 'alice') === 'yes' ? true : undefined),
    30_000,
    'edit to include SecretSyncs',
  );
  await eventually(
    async () => (can('list', 'bob') === 'yes' ? true : undefined),
    30_000,
    'view to include SecretSyncs',
  );
  expect(can('create', 'bob')).toBe('no');
});

policyTest(
  'policies: no service-account token Secrets, no Secrets without one same-named SecretSync owner',
  async () => {
    const r1 = await refusedEventually(
      () =>
        asManager.createNamespacedSecret({
          namespace: ns.name,
          body: {
            metadata: { name: 'sat', annotations: { 'kubernetes.io/service-account.name': 'default' } },
            type: 'kubernetes.io/service-account-token',
          },
        }),
      'may not write service-account token Secrets',
    );
    expect(r1.code).toBe(403);
    const r2 = await refusedEventually(
      () =>
        asManager.createNamespacedSecret({
          namespace: ns.name,
          body: { metadata: { name: 'orphan' }, stringData: { a: 'b' } },
        }),
      'owned by exactly one SecretSync of the same name',
    );
    expect(r2.code).toBe(403);
  },
);

policyTest("policies: no update of a Secret without the manager's label", async () => {
  // A SecretSync that never syncs (its class does not exist) owns a Secret the user wrote.
  const ss = await k.custom.createNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    body: secretSyncBody({ name: 'users', spc: 'missing', data: { a: 'foo' } }),
  });
  await k.core.createNamespacedSecret({
    namespace: ns.name,
    body: {
      metadata: {
        name: 'users',
        ownerReferences: [
          { apiVersion: 'secret-sync.x-k8s.io/v1alpha1', kind: 'SecretSync', name: 'users', uid: ss.metadata.uid },
        ],
      },
      stringData: { a: 'mine' },
    },
  });
  const r = await refusedEventually(
    () =>
      asManager.patchNamespacedSecret(
        { name: 'users', namespace: ns.name, body: { stringData: { a: 'taken' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    'may only update Secrets that already carry its label',
  );
  expect(r.code).toBe(403);
  expect((await k.core.readNamespacedSecret({ name: 'users', namespace: ns.name })).data?.a).toBe(
    Buffer.from('mine').toString('base64'),
  );
});

policyTest('policies: tokens only for 600 s and the configured audience', async () => {
  const mint = (audiences: string[], expirationSeconds: number) =>
    asManager.createNamespacedServiceAccountToken({
      name: 'default',
      namespace: ns.name,
      body: { spec: { audiences, expirationSeconds } },
    });
  expect(
    (
      await refusedEventually(
        () => mint(['api://AzureADTokenExchange'], 3600),
        'only mint tokens that live 600 seconds',
      )
    ).code,
  ).toBe(403);
  expect(
    (await refusedEventually(() => mint(['https://kubernetes.default.svc'], 600), 'one of its configured audiences'))
      .code,
  ).toBe(403);
  await expect(mint(['api://AzureADTokenExchange'], 600)).resolves.toBeDefined();
});

policyTest('opt-in: with requireServiceAccountOptIn, only ServiceAccounts the namespace lists get tokens', async () => {
  helm(
    'upgrade',
    RELEASE,
    CHART,
    '--namespace',
    RELEASE_NS,
    '--reuse-values',
    '--set',
    'admissionPolicies.requireServiceAccountOptIn=true',
  );
  try {
    const mint = () =>
      asManager.createNamespacedServiceAccountToken({
        name: 'default',
        namespace: ns.name,
        body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
      });
    const r = await refusedEventually(mint, 'ServiceAccount default has not opted in');
    expect(r.code).toBe(403);
    // The manager shows the refusal on the SecretSync, then syncs once the namespace opts the ServiceAccount in.
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'fresh' } } });
    await k.custom.createNamespacedCustomObject({
      group: 'secret-sync.x-k8s.io',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'secretsyncs',
      body: secretSyncBody({ name: 'needs-opt-in', sa: 'fresh', spc: 'spc', data: { key: 'foo' } }),
    });
    const readyOf = async () =>
      (
        (await k.custom.getNamespacedCustomObject({
          group: 'secret-sync.x-k8s.io',
          version: 'v1alpha1',
          namespace: ns.name,
          plural: 'secretsyncs',
          name: 'needs-opt-in',
        })) as { status?: { conditions?: { type: string; reason: string; message: string }[] } }
      ).status?.conditions?.find((c) => c.type === 'Ready');
    const refusedStatus = await eventually(
      async () => {
        const c = await readyOf();
        return c?.reason === 'ControllerInternalError' ? c : undefined;
      },
      30_000,
      'the refusal in status',
    );
    expect(refusedStatus.message).toContain('ServiceAccount fresh has not opted in');
    // The fix is the namespace's, not the SecretSync's: the status says so.
    expect(refusedStatus.message).toContain("The fix is in the cluster's configuration, not in the SecretSync");
    await k.core.patchNamespace(
      {
        name: ns.name,
        body: { metadata: { annotations: { 'secret-store-sync.x-k8s.io/token-service-accounts': 'fresh, default' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await eventually(
      async () => ((await refused(mint())).code === 200 ? true : undefined),
      30_000,
      'the opted-in ServiceAccount to get a token',
    );
    await eventually(
      async () => ((await readyOf())?.reason === 'CreateSucceeded' ? true : undefined),
      60_000,
      'the opted-in SecretSync to sync',
    );
  } finally {
    helm(
      'upgrade',
      RELEASE,
      CHART,
      '--namespace',
      RELEASE_NS,
      '--reuse-values',
      '--set',
      'admissionPolicies.requireServiceAccountOptIn=false',
    );
  }
});

test('upgrade keeps the hash key; uninstall keeps CRDs, SecretSyncs and Secrets', async () => {
  const key = () =>
    k.core.readNamespacedSecret({ name: 'secret-store-sync-hash-key', namespace: RELEASE_NS }).then((s) => s.data?.key);
  const before = await key();
  const rv = (await k.core.readNamespacedSecret({ name: 'synced', namespace: ns.name })).metadata?.resourceVersion;
  await manager?.stop();
  helm(
    'upgrade',
    RELEASE,
    CHART,
    '--namespace',
    RELEASE_NS,
    '--reuse-values',
    '--set',
    'rotationPollIntervalInSeconds=600',
  );
  expect(await key()).toBe(before);
  // The upgraded manager (same key from the Secret) re-checks after a class edit and writes nothing.
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    kubeconfig: managerKubeconfig,
    hashKey: await chartHashKey(),
    args: ['--rotation-poll-interval-seconds=600', '--provider-token-audiences=test=api://AzureADTokenExchange'],
  });
  await k.custom.patchNamespacedCustomObject(
    {
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      name: 'spc',
      body: { metadata: { labels: { touched: 'yes' } }, spec: { parameters: { prefix: 'f' } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  await eventually(
    async () =>
      manager!.logs().includes('"reason":"UpdateNoValueChangeSucceeded","secretSync":"' + ns.name + '/synced"')
        ? true
        : undefined,
    30_000,
    'the no-change re-check',
  );
  expect((await k.core.readNamespacedSecret({ name: 'synced', namespace: ns.name })).metadata?.resourceVersion).toBe(
    rv,
  );
  await manager.stop();
  manager = undefined;
  helm('uninstall', RELEASE, '--namespace', RELEASE_NS);
  expect(kubectl('get', 'crd', 'secretsyncs.secret-sync.x-k8s.io').status).toBe(0);
  expect((await k.core.readNamespacedSecret({ name: 'synced', namespace: ns.name })).data?.key).toBeDefined();
  await k.custom.deleteNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    name: 'synced',
  });
  await eventually(
    async () =>
      (await k.core.readNamespacedSecret({ name: 'synced', namespace: ns.name }).then(() => 200, apiStatus)) === 404
        ? true
        : undefined,
    60_000,
    'the Secret to be collected',
  );
  helm('install', RELEASE, CHART, '--namespace', RELEASE_NS);
});
