// The chart's pod on a real node: `npm run sandbox -- --pod` starts a stack of its own with a
// kubelet and containerd (test/env/node.ts), builds and imports the two images, `helm install`s
// deploy/chart into azure-secret-store with the values a user sets plus the node's network and the
// stack's addresses, and walks through the guide through the pod. This test then checks what only
// a running pod shows: the containers' security contexts in effect, the socket in the emptyDir, the
// API token in the manager only, probes, limits, the downward API, per-container logs, a provider
// container killed and restarted, and what `helm uninstall` leaves.
// Its own stack: helm must own azure-secret-store, which other tests fill with the plain manifests.
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../../test/env/control-plane.js';
import { buildExampleProviderImage, EXAMPLE_PROVIDER_IMAGE } from '../../test/env/images.js';
import { getOnce } from '../../test/helpers/http.js';
import { eventually } from '../../test/helpers/kube.js';

/** The chart's default limits (the test installs without overriding them). */
const chartLimits = (
  parseYaml(readFileSync(join(repoRoot, 'deploy', 'chart', 'secret-store-sync', 'values.yaml'), 'utf8')) as {
    resources: Record<'manager' | 'provider', { limits: { memory: string } }>;
  }
).resources;
const mebibytes = (v: string) => {
  const m = /^(\d+)Mi$/.exec(v);
  if (!m) throw new Error(`limit '${v}' is not in Mi`);
  return Number(m[1]) * 2 ** 20;
};

const NS = 'azure-secret-store';
const RELEASE = 'secret-store-sync';
const dir = mkdtempSync(join(tmpdir(), 'sss-pod-'));
const kubeconfig = join(dir, 'control-plane', 'kubeconfig');
const env = { ...process.env, SSS_SANDBOX_DIR: dir };
let sandbox: ChildProcess;
let exited: Promise<number | null>;
let out = '';
let core: CoreV1Api;
const started = Date.now();

const kubectl = (...args: string[]) =>
  spawnSync('kubectl', args, { encoding: 'utf8', env: { ...env, KUBECONFIG: kubeconfig } });
const ok = (...args: string[]) => {
  const r = kubectl(...args);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const secretValue = (key: string) =>
  Buffer.from(
    JSON.parse(ok('get', 'secret', 'secret-sync-name', '-n', 'my-namespace', '-o', 'json')).data[key] as string,
    'base64',
  ).toString();
async function thePod(): Promise<V1Pod> {
  const pods = (
    await core.listNamespacedPod({ namespace: NS, labelSelector: `app.kubernetes.io/instance=${RELEASE}` })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length !== 1) throw new Error(`expected one pod, found ${pods.length}`);
  return pods[0]!;
}
const helmBin = () =>
  execFileSync('bash', [join(repoRoot, 'test', 'env', 'build-helm.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;
const containerStatus = (pod: V1Pod, name: string) => pod.status!.containerStatuses!.find((c) => c.name === name)!;

/** Adds a version of my-secret with the sandbox's own command and waits for the Secret to hold it. */
async function rotateTo(value: string, through: string): Promise<void> {
  const rotate = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), 'rotate', value],
    { cwd: repoRoot, env, encoding: 'utf8' },
  );
  expect(rotate.status).toBe(0);
  await eventually(
    async () => (secretValue('my-secret-data-key0') === value ? true : undefined),
    60_000,
    `${value} through ${through}`,
  );
}

/** What a container sees of itself, read by node inside it (the images have no shell). */
function inside(pod: string, container: string): Record<string, unknown> {
  const script = `
    const fs = require('fs');
    const r = { uid: process.getuid(), gid: process.getgid() };
    try { fs.writeFileSync('/probe', 'x'); r.rootWrite = 'written'; } catch (e) { r.rootWrite = e.code; }
    try { const s = fs.statSync('/provider/azure.sock'); r.socket = { uid: s.uid, gid: s.gid, isSocket: s.isSocket() }; } catch (e) { r.socket = e.code; }
    try { fs.writeFileSync('/provider/.probe', 'x'); fs.unlinkSync('/provider/.probe'); r.emptyDirWrite = 'written'; } catch (e) { r.emptyDirWrite = e.code; }
    r.token = fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
    r.env = { POD_NAME: process.env.POD_NAME, POD_UID: process.env.POD_UID, POD_NAMESPACE: process.env.POD_NAMESPACE };
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    for (const k of ['CapEff', 'NoNewPrivs', 'Seccomp']) r[k] = status.match(new RegExp(k + ':\\\\s*(\\\\S+)'))[1];
    const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch (e) { return e.code; } };
    r.memoryLimit = read('/sys/fs/cgroup/memory/memory.limit_in_bytes');
    r.cpuQuota = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
    console.log(JSON.stringify(r));`;
  return JSON.parse(ok('-n', NS, 'exec', pod, '-c', container, '--', 'node', '-e', script)) as Record<string, unknown>;
}

beforeAll(async () => {
  sandbox = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'sandbox', 'sandbox.ts'), '--pod'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  sandbox.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  sandbox.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  exited = new Promise((r) => sandbox.once('exit', (code) => r(code)));
  // A first run on a machine also fetches node and the Debian packages for the images.
  const deadline = Date.now() + 420_000;
  while (!out.includes('The sandbox is running')) {
    if (Date.now() > deadline || sandbox.exitCode !== null)
      throw new Error(`the sandbox with the pod did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(
    `sandbox --pod up in ${((Date.now() - started) / 1000).toFixed(1)} s\n${out
      .split('\n')
      .filter((l) => /Ready in|imported|built |pod memory|stack ready/.test(l))
      .join('\n')}`,
  );
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
}, 480_000);

afterAll(async () => {
  if (!sandbox) return;
  sandbox.kill('SIGINT');
  expect(await exited).toBe(0);
  // Nothing it started is left: no process naming its folder, no mount under it.
  const left = spawnSync('bash', ['-c', `ps -eo args | grep -F -- '${dir}' | grep -v grep || true`], {
    encoding: 'utf8',
  }).stdout.trim();
  expect(left).toBe('');
  expect(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir)).toBe(false);
  console.log(`pod test done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 120_000);

test('helm installed the chart; the walkthrough synced Hello2 and Hello! through the pod', async () => {
  expect(out).toMatch(
    /\$ helm install secret-store-sync deploy\/chart\/secret-store-sync --namespace azure-secret-store --create-namespace --set rotationPollIntervalInSeconds=3600 --set hostNetwork=true /,
  );
  expect(out).toMatch(/STATUS: deployed/);
  expect(out).toMatch(/key0}" \| base64 -d\nHello2\n/);
  expect(out).toMatch(/key1}" \| base64 -d\nHello!\n/);
  const pod = await thePod();
  expect(pod.spec!.nodeName).toBe('stack-node');
  expect(pod.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
  for (const c of ['manager', 'provider-azure-installer'])
    expect(containerStatus(pod, c)).toMatchObject({ ready: true, started: true, restartCount: 0 });
  expect(Object.keys(containerStatus(pod, 'manager').state!)).toEqual(['running']);
});

test('security contexts in effect: user 65532, read-only root, no capabilities, no new privileges, seccomp; the socket in the emptyDir', async () => {
  const pod = await thePod();
  const name = pod.metadata!.name!;
  const manager = inside(name, 'manager');
  const provider = inside(name, 'provider-azure-installer');
  for (const c of [manager, provider]) {
    expect(c).toMatchObject({
      uid: 65532,
      gid: 65532,
      rootWrite: 'EROFS',
      emptyDirWrite: 'written',
      CapEff: '0000000000000000',
      NoNewPrivs: '1',
      Seccomp: '2',
    });
    // The provider made the socket as 65532, in the emptyDir both containers mount.
    expect(c.socket).toEqual({ uid: 65532, gid: 65532, isSocket: true });
  }
  // The API token in the manager's container only.
  expect(manager.token).toBe(true);
  expect(provider.token).toBe(false);
  // The downward API names the manager's pod.
  expect(manager.env).toEqual({ POD_NAME: name, POD_UID: pod.metadata!.uid, POD_NAMESPACE: NS });
  // The chart's limits, as the containers' cgroups hold them.
  expect(manager).toMatchObject({
    memoryLimit: String(mebibytes(chartLimits.manager.limits.memory)),
    cpuQuota: '100000',
  });
  expect(provider).toMatchObject({
    memoryLimit: String(mebibytes(chartLimits.provider.limits.memory)),
    cpuQuota: '100000',
  });
}, 60_000);

test("host network: probes on the node's loopback only (the kubelet's, host 127.0.0.1, keep both ready), metrics on the node's address only", async () => {
  const pod = await thePod();
  const ip = pod.status!.podIP!;
  expect(ip).toBe(pod.status!.hostIP);
  for (const c of ['manager', 'provider-azure-installer'])
    expect(containerStatus(pod, c)).toMatchObject({ ready: true, restartCount: 0 });
  for (const url of ['http://127.0.0.1:8081/readyz', 'http://127.0.0.1:8081/healthz', 'http://127.0.0.1:8989/healthz'])
    expect(await getOnce(url)).toEqual({ status: 200, body: 'ok' });
  // Not on the node's network: before, any pod reaching the node could flood the provider's /healthz.
  for (const port of [8081, 8989])
    await expect(getOnce(`http://${ip}:${port}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  expect((await getOnce(`http://${ip}:8085/metrics`)).body).toContain('secretsync_reconciles_total');
  expect((await getOnce(`http://${ip}:8898/metrics`)).body).toContain('grpc_requests_total');
  for (const port of [8085, 8898])
    await expect(getOnce(`http://127.0.0.1:${port}/metrics`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});

test('kubectl logs -c manager and -c provider-azure-installer: JSON lines as the README says, no value or token', async () => {
  const name = (await thePod()).metadata!.name!;
  const lines = (container: string) =>
    ok('-n', NS, 'logs', name, '-c', container)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const manager = lines('manager');
  const synced = manager.find((l) => l.message === 'synced' && l.secretSync === 'my-namespace/secret-sync-name')!;
  expect(synced).toMatchObject({ level: 'info', reason: 'CreateSucceeded', component: 'manager' });
  expect(typeof synced.durationMs).toBe('number');
  expect((synced.versions as { id: string }[]).map((v) => v.id)).toEqual(['secret/my-secret/0', 'secret/my-secret/1']);
  const provider = lines('provider-azure-installer');
  expect(provider.find((l) => l.message === 'mount')).toMatchObject({
    component: 'provider-azure',
    identity: 'workloadIdentity',
    files: 2,
  });
  const all = JSON.stringify([...manager, ...provider]);
  for (const secret of ['Hello2', 'Hello!']) expect(all).not.toContain(secret);
  expect(all).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./); // no JWT (service-account or Entra token)
});

test('a killed provider container is restarted by the kubelet, and the next rotation syncs through it', async () => {
  const before = await thePod();
  const id = containerStatus(before, 'provider-azure-installer').containerID!.replace(/^containerd:\/\//, '');
  execFileSync('ctr', [
    '--address',
    join(dir, 'node', 'containerd', 'containerd.sock'),
    '--namespace',
    'k8s.io',
    'tasks',
    'kill',
    '--signal',
    'SIGKILL',
    id,
  ]);
  const after = await eventually(
    async () => {
      const p = await thePod();
      const c = containerStatus(p, 'provider-azure-installer');
      return c.restartCount === 1 && c.ready ? p : undefined;
    },
    60_000,
    'the provider container to restart',
  );
  expect(containerStatus(after, 'provider-azure-installer').lastState?.terminated).toMatchObject({
    exitCode: 137,
    reason: 'Error',
  });
  expect(containerStatus(after, 'manager').restartCount).toBe(0);
  // The killed container's log is still there.
  expect(ok('-n', NS, 'logs', after.metadata!.name!, '-c', 'provider-azure-installer', '--previous')).toContain(
    '"message":"mount"',
  );
  await rotateTo('Hello3', 'the restarted provider');
  expect(secretValue('my-secret-data-key1')).toBe('Hello2');
}, 150_000);

test("the install's NOTES: each command it gives for the release works on the running pod", () => {
  const notes = out.slice(out.indexOf('NOTES:'));
  const commands = [...notes.matchAll(/^ {2}(kubectl -n azure-secret-store [^\n<]+)$/gm)].map((m) => m[1]!);
  expect(commands.map((c) => c.split(' ').slice(3, 5).join(' '))).toEqual([
    'rollout status',
    'get pods',
    'describe pods',
    'logs deployment/secret-store-sync',
    'logs deployment/secret-store-sync',
  ]);
  for (const c of commands) {
    const r = kubectl(...c.split(' ').slice(1));
    expect({ c, status: r.status, stderr: r.stderr }).toMatchObject({ c, status: 0 });
  }
  expect(ok('-n', NS, 'get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE}`)).toMatch(/2\/2\s+Running/);
});

test('helm upgrade with hostNetwork on the one node completes: the old pod frees the ports, the new one syncs', async () => {
  const before = await thePod();
  const r = spawnSync(
    helmBin(),
    [
      'upgrade',
      RELEASE,
      join(repoRoot, 'deploy', 'chart', 'secret-store-sync'),
      '--namespace',
      NS,
      '--reuse-values',
      '--set',
      'logLevel=debug',
      '--wait',
      '--timeout',
      '3m',
      '--kubeconfig',
      kubeconfig,
    ],
    { encoding: 'utf8' },
  );
  // Before, the new pod stayed Pending (the node's ports were taken) until helm gave up.
  expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 0 });
  // helm's --wait returned once the new pod was ready: the old one is gone, the new one serves.
  const after = await thePod();
  expect(after.metadata!.uid).not.toBe(before.metadata!.uid);
  expect(after.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
  expect(after.spec!.hostNetwork).toBe(true);
  expect(after.spec!.containers.find((c) => c.name === 'manager')!.args).toContain('--log-level=debug');
  expect(after.status!.containerStatuses!.map((c) => c.name).sort()).toEqual(['manager', 'provider-azure-installer']);
  await rotateTo('Hello4', 'the upgraded pod');
}, 300_000);

test('a third-party provider built with the kit runs as an extra container (extraProviders) and a Secret syncs through it', async () => {
  // The kit's example provider, as a third party would ship it, into the node's containerd.
  const archive = await buildExampleProviderImage(join(dir, 'example-image'));
  execFileSync('ctr', [
    '--address',
    join(dir, 'node', 'containerd', 'containerd.sock'),
    '--namespace',
    'k8s.io',
    'images',
    'import',
    archive,
  ]);
  const values = join(dir, 'extra-provider.yaml');
  writeFileSync(
    values,
    JSON.stringify({
      extraProviders: [
        {
          name: 'example',
          image: EXAMPLE_PROVIDER_IMAGE,
          imagePullPolicy: 'Never',
          args: ['--endpoint=unix://$(PROVIDER_SOCKET)'],
          tokenAudiences: ['example-audience'],
          resources: { limits: { cpu: '500m', memory: '128Mi' } },
        },
      ],
    }),
  );
  execFileSync(
    helmBin(),
    [
      'upgrade',
      RELEASE,
      'deploy/chart/secret-store-sync',
      '--namespace',
      NS,
      '--reuse-values',
      '-f',
      values,
      '--wait',
      '--timeout',
      '3m',
      '--kubeconfig',
      kubeconfig,
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  const pod = await eventually(
    async () => {
      const p = await thePod();
      const ready = ['manager', 'provider-azure-installer', 'provider-example'].every(
        (c) => p.status?.containerStatuses?.find((s) => s.name === c)?.ready,
      );
      return ready ? p : undefined;
    },
    120_000,
    'the pod with the example provider to be ready',
  );
  const name = pod.metadata!.name!;
  // The chart's restrictive default, in effect; its socket in the folder the manager reads.
  expect(inside(name, 'provider-example')).toMatchObject({
    uid: 65532,
    gid: 65532,
    rootWrite: 'EROFS',
    CapEff: '0000000000000000',
    NoNewPrivs: '1',
    Seccomp: '2',
    token: false,
  });
  expect(
    ok(
      '-n',
      NS,
      'exec',
      name,
      '-c',
      'manager',
      '--',
      'node',
      '-e',
      "console.log(require('fs').statSync('/provider/example.sock').isSocket())",
    ).trim(),
  ).toBe('true');
  const manifest = join(dir, 'example-sync.yaml');
  writeFileSync(
    manifest,
    [
      'apiVersion: secrets-store.csi.x-k8s.io/v1',
      'kind: SecretProviderClass',
      'metadata: { name: example-class, namespace: my-namespace }',
      'spec: { provider: example, parameters: { prefix: app/ } }',
      '---',
      'apiVersion: secret-sync.x-k8s.io/v1alpha1',
      'kind: SecretSync',
      'metadata: { name: from-example, namespace: my-namespace }',
      'spec:',
      '  serviceAccountName: my-service-account',
      '  secretProviderClassName: example-class',
      '  secretObject: { type: Opaque, data: [{ sourcePath: app/db-password, targetKey: password }] }',
    ].join('\n'),
  );
  ok('apply', '-f', manifest);
  const synced = await eventually(
    async () => {
      const r = kubectl('get', 'secret', 'from-example', '-n', 'my-namespace', '-o', 'jsonpath={.data.password}');
      return r.status === 0 && r.stdout ? Buffer.from(r.stdout, 'base64').toString() : undefined;
    },
    60_000,
    'the Secret synced through the example provider',
  );
  expect(synced).toBe('example-password');
  // The example echoes the attribute names it got as an object version: a token was minted for
  // its audience and passed the chart's admission policy.
  const versions = JSON.parse(
    ok('get', 'secretsync', 'from-example', '-n', 'my-namespace', '-o', 'jsonpath={.status.syncedObjectVersions}'),
  ) as { id: string; version: string }[];
  expect(versions.find((v) => v.id === 'attributes')!.version).toContain('csi.storage.k8s.io/serviceAccount.tokens');
  // The manager was configured with each provider's own audiences.
  const starting = ok('-n', NS, 'logs', name, '-c', 'manager')
    .split('\n')
    .map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : {}))
    .find((l) => l.message === 'starting')!;
  expect(starting.providerTokenAudiences).toEqual({
    azure: ['api://AzureADTokenExchange'],
    example: ['example-audience'],
  });
  // The guide's SecretSync still syncs through provider-azure in the new pod.
  expect(secretValue('my-secret-data-key0')).toBe('Hello4');
}, 300_000);

test('helm uninstall removes the pod and leaves the Secret and the CRDs', async () => {
  const helm = helmBin();
  execFileSync(helm, ['uninstall', RELEASE, '--namespace', NS, '--wait', '--kubeconfig', kubeconfig], {
    encoding: 'utf8',
  });
  await eventually(
    async () => ((await core.listNamespacedPod({ namespace: NS })).items.length === 0 ? true : undefined),
    60_000,
    'the pod to be gone',
  );
  expect(secretValue('my-secret-data-key0')).toBe('Hello4');
  for (const crd of ['secretsyncs.secret-sync.x-k8s.io', 'secretproviderclasses.secrets-store.csi.x-k8s.io'])
    expect(kubectl('get', 'crd', crd).status).toBe(0);
  expect(kubectl('get', 'secretsync', 'secret-sync-name', '-n', 'my-namespace').status).toBe(0);
}, 120_000);
