// Every shell command in the README runs here (or, for the sandbox, in its own test), verbatim,
// against control planes of this test's own.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startControlPlane, yamlFilesIn, type ControlPlane } from './env/control-plane.js';
import { createCa } from './env/pki.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```bash\n([^]*?)```/g)].map((m) => m[1]!);
const helmDir = join(
  execFileSync('bash', [join(repoRoot, 'test', 'env', 'build-helm.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!,
  '..',
);
const block = (first: string) => {
  const b = blocks.find((x) => x.trimStart().startsWith(first));
  if (!b) throw new Error(`no README block starting with '${first}'`);
  return b;
};
/** Runs a README block with bash, helm on PATH and KUBECONFIG pointing at the control plane. */
function run(script: string, kubeconfig?: string) {
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${helmDir}:${process.env.PATH}`, ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}) },
  });
}
const planes: ControlPlane[] = [];
async function freshControlPlane(): Promise<ControlPlane> {
  const cp = await startControlPlane({ stateDir: mkdtempSync(join(tmpdir(), 'sss-readme-')), ca: createCa() });
  planes.push(cp);
  return cp;
}
afterAll(async () => {
  for (const cp of planes) await cp.stop();
});

test('the README has the blocks this test runs, and every npm script it names exists', () => {
  const scripts = Object.keys(
    (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
  );
  for (const m of readme.matchAll(/npm run ([\w:-]+)/g)) expect(scripts).toContain(m[1]);
  // Run elsewhere: `npm run images` and the skopeo push (deploy/test/images-command.int.test.ts,
  // the push block with only the registry and folder changed), `npm pack -w proto` and the install
  // of the tarball (proto/test/package.unit.test.ts).
  expect(blocks.length).toBe(10);
});

/**
 * The Prometheus Operator's two kinds the monitoring commands make, defined loosely (any spec):
 * enough for the apiserver to take the objects as a cluster with the Operator does.
 */
function operatorKinds(): string {
  return ['PodMonitor', 'PrometheusRule']
    .map((kind) => {
      const plural = `${kind.toLowerCase()}s`;
      return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: ${plural}.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: ${kind}, plural: ${plural}, singular: ${kind.toLowerCase()} }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;
    })
    .join('---\n');
}

test('"helm install" from the README installs the chart; its monitoring commands add the PodMonitor, the dashboard and the rules', async () => {
  const cp = await freshControlPlane();
  const r = run(block('helm install'), cp.info.kubeconfig);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const get = (what: string) => run(`kubectl get ${what} -o name`, cp.info.kubeconfig).stdout;
  expect(get('deployment -n azure-secret-store')).toContain('deployment.apps/secret-store-sync');
  expect(get('validatingadmissionpolicies')).toContain('secret-store-sync-secret-writes');
  expect(get('crd')).toContain('secretsyncs.secret-sync.x-k8s.io');

  const prepared = spawnSync(
    'bash',
    [
      '-c',
      'kubectl apply -f - && kubectl wait --for=condition=Established crd --all --timeout=60s && kubectl create namespace monitoring',
    ],
    { input: operatorKinds(), encoding: 'utf8', env: { ...process.env, KUBECONFIG: cp.info.kubeconfig } },
  );
  expect(prepared.status).toBe(0);
  for (const first of [
    'helm upgrade --install secret-store-sync deploy/chart/secret-store-sync -n azure-secret-store --reuse-values \\\n  --set monitoring.podMonitor',
    'kubectl -n monitoring create configmap',
    'helm upgrade --install secret-store-sync deploy/chart/secret-store-sync -n azure-secret-store --reuse-values \\\n  --set monitoring.prometheusRule',
  ]) {
    const m = run(block(first), cp.info.kubeconfig);
    expect({ block: first, status: m.status, stderr: m.stderr }).toMatchObject({ status: 0 });
  }
  expect(get('podmonitors -n azure-secret-store')).toContain('secret-store-sync');
  expect(get('prometheusrules -n azure-secret-store')).toContain('secret-store-sync');
  expect(
    run(
      'kubectl -n monitoring get configmap secret-store-sync-dashboard -o jsonpath={.metadata.labels.grafana_dashboard}',
      cp.info.kubeconfig,
    ).stdout,
  ).toBe('1');
});

test('the plain-manifest install from the README works', async () => {
  const cp = await freshControlPlane();
  const r = run(block('kubectl apply -f deploy/crds/'), cp.info.kubeconfig);
  expect(r.status).toBe(0);
  const get = (what: string) => run(`kubectl get ${what} -o name`, cp.info.kubeconfig).stdout;
  expect(get('secret -n azure-secret-store')).toContain('secret/secret-store-sync-hash-key');
  expect(get('deployment -n azure-secret-store')).toContain('deployment.apps/secret-store-sync');
  expect(yamlFilesIn(join(repoRoot, 'deploy', 'crds'))).toHaveLength(2);
});

test('the conformance command from the README passes the example provider', () => {
  const r = run(block('npm run build'));
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^\d+ passed, 0 failed, \d+ skipped$/m);
});
