// The operator's view against real data: a scripted scenario on the stack (a sync with an expiring
// secret, an expired one, failing SecretSyncs, a provider answering UNAVAILABLE, a throttled Key
// Vault read), then both processes' /metrics are scraped and every metric name, label, label value
// and printed label the dashboard and the alert rules reference must be in that scrape. promtool
// (built from the Go module proxy) checks the rules and runs their unit tests; the chart's
// PodMonitor and PrometheusRule are rendered and held to the pod and to deploy/observability/.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { AzureStack } from '../../test/env/azure/client.js';
import { repoRoot } from '../../test/env/control-plane.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import {
  startProvider,
  startTestProvider,
  type RunningProviderProcess,
  type TestProvider,
} from '../../test/helpers/provider.js';
import {
  alertQueries,
  chartDir,
  dashboardQueries,
  loadAlerts,
  observabilityDir,
  type Query,
  type RuleFile,
} from './observability-files.js';
import { checkExpr, parseExposition, type Scrape } from './promql-refs.js';
import { azureParameters, secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `obs-${Date.now().toString(36)}`;
// Fault injection matches request paths on the shared stack: a name no other test uses.
const throttledSecret = `obs-throttled-${Date.now().toString(36)}`;
const DAY = 86_400_000;
/** What Prometheus (job, instance) and the Prometheus Operator's PodMonitor (container, pod) attach at scrape time. */
const TARGET_LABELS = new Set(['job', 'instance', 'container', 'pod']);
const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
const built = (script: string) =>
  execFileSync('bash', [join(repoRoot, 'test', 'env', script)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;

let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let down: TestProvider;
let manager: RunningManager;
let clientId: string;
let managerScrape: Scrape;
let providerScrape: Scrape;
const scrape: Scrape = new Map();

interface Condition {
  type: string;
  status: string;
  reason: string;
}
const readyOf = async (name: string) =>
  (
    (await k.custom.getNamespacedCustomObject({
      group: 'secret-sync.x-k8s.io',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'secretsyncs',
      name,
    })) as { status?: { conditions?: Condition[] } }
  ).status?.conditions?.find((c) => c.type === 'Ready');

async function secretSync(
  name: string,
  providerName: string,
  objects: Record<string, string>[],
  spc: string | null = name,
) {
  if (spc) {
    const parameters =
      providerName === 'azure'
        ? azureParameters({ keyvaultName: vault, tenantID: azure.tenantId, clientID: clientId, objects })
        : { prefix: '' };
    await k.custom.createNamespacedCustomObject({
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      body: secretProviderClass({ name: spc, provider: providerName, parameters }),
    });
  }
  const data = objects.map((o) => ({ sourcePath: o.objectName!, targetKey: 'value' }));
  await k.custom.createNamespacedCustomObject({
    group: 'secret-sync.x-k8s.io',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'secretsyncs',
    body: secretSyncBody({ name, sa: 'workload', spc: spc ?? `${name}-missing`, type: 'Opaque', data }),
  });
}
const readyReason = (name: string, reason: string) =>
  eventually(
    async () => ((await readyOf(name))?.reason === reason ? true : undefined),
    60_000,
    `${name}: Ready reason ${reason}`,
  );

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'obs');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  const id = await azure.createIdentity(`obs-${ns.name}`);
  clientId = id.clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  const socketDir = mkdtempSync(join(tmpdir(), 'sss-obs-'));
  provider = await startProvider({ socketDir });
  down = await startTestProvider('down', socketDir);
  down.setState({ files: {}, fail: { code: 'Unavailable', message: 'the backend is down' } });
  manager = await startManager({
    namespace: ns.name,
    providerDir: socketDir,
    args: ['--rotation-poll-interval-seconds=5'],
  });

  await azure.secrets(vault).setSecret('expiring', 'v1', { expiresOn: new Date(Date.now() + 10 * DAY) });
  await azure.secrets(vault).setSecret('expired', 'v1', { expiresOn: new Date(Date.now() - DAY) });
  await azure.secrets(vault).setSecret(throttledSecret, 'v1');
  await azure.injectFault({
    target: 'vault',
    pathPattern: `/secrets/${throttledSecret}`,
    status: 429,
    retryAfterSeconds: 1,
    count: 1,
  });

  await secretSync('expiring', 'azure', [{ objectName: 'expiring', objectType: 'secret' }]);
  await secretSync('expired', 'azure', [{ objectName: 'expired', objectType: 'secret' }]);
  await secretSync('throttled', 'azure', [{ objectName: throttledSecret, objectType: 'secret' }]);
  await secretSync('missing-object', 'azure', [{ objectName: 'not-in-the-vault', objectType: 'secret' }]);
  await secretSync('provider-down', 'down', [{ objectName: 'x' }]);
  await secretSync('provider-gone', 'gone', [{ objectName: 'x' }]);
  await secretSync('no-class', 'azure', [{ objectName: 'x' }], null);
  for (const name of ['expiring', 'expired', 'throttled']) await readyReason(name, 'CreateSucceeded');
  for (const name of ['missing-object', 'provider-down', 'provider-gone'])
    await readyReason(name, 'CreateFailedProviderError');
  await readyReason('no-class', 'ControllerSpcError');
  // A rotation (every 5 s) makes the no-change outcome and the slow lane appear too.
  await eventually(
    async () => ((await manager.metrics()).includes('reason="UpdateNoValueChangeSucceeded"') ? true : undefined),
    30_000,
    'a rotation',
  );

  managerScrape = parseExposition(await manager.metrics());
  providerScrape = parseExposition(await provider.metrics());
  for (const s of [managerScrape, providerScrape]) {
    for (const [name, labels] of s) {
      const into = scrape.get(name) ?? new Map<string, Set<string>>();
      for (const [l, values] of labels) into.set(l, new Set([...(into.get(l) ?? []), ...values]));
      scrape.set(name, into);
    }
  }
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await down?.stop();
  await ns?.dispose();
});

function problems(queries: Query[]): string[] {
  return queries.flatMap((q) =>
    checkExpr(q.expr, scrape, { targetLabels: TARGET_LABELS, outputLabels: q.outputLabels }).problems.map(
      (p) => `${q.where}: ${p}`,
    ),
  );
}

test('the scenario produced what an operator would look at', () => {
  const values = (metric: string, label: string) => [...(scrape.get(metric)?.get(label) ?? [])].sort();
  expect(values('secretsync_reconciles_total', 'reason')).toEqual(
    expect.arrayContaining([
      'CreateSucceeded',
      'CreateFailedProviderError',
      'ControllerSpcError',
      'UpdateNoValueChangeSucceeded',
    ]),
  );
  expect(values('secretsync_provider_call_duration_seconds_count', 'code')).toEqual(
    expect.arrayContaining(['OK', 'UNAVAILABLE']),
  );
  expect(values('keyvault_requests_total', 'status')).toEqual(expect.arrayContaining(['200', '404', '429']));
  expect(values('keyvault_requests_total', 'vault')).toEqual([vault]);
  expect(values('secretsync_object_expiry_timestamp_seconds', 'secretsync')).toEqual(['expired', 'expiring']);
  // Memory and CPU of both processes, from prom-client's defaults.
  for (const s of [managerScrape, providerScrape])
    for (const m of ['process_resident_memory_bytes', 'process_cpu_seconds_total']) expect(s.has(m)).toBe(true);
});

test('every metric, label and value the dashboard queries, and every label its legends print, is in the scrape', () => {
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThan(20);
  expect(problems(queries)).toEqual([]);
});

test('every metric, label and value the alert rules query, and every label their annotations print, is in the scrape', () => {
  const queries = alertQueries();
  expect(queries).toHaveLength(7);
  expect(problems(queries)).toEqual([]);
});

describe('promtool', () => {
  let promtool: string;
  beforeAll(() => {
    promtool = built('build-promtool.sh');
  }, 1_800_000);

  test("check rules: deploy/observability/alerts.yaml and the chart's PrometheusRule", () => {
    const plain = run(promtool, ['check', 'rules', join(observabilityDir, 'alerts.yaml')]);
    expect(plain.stdout + plain.stderr).toContain('SUCCESS: 7 rules found');
    expect(plain.status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'sss-rules-'));
    const file = join(dir, 'chart-rules.yaml');
    writeFileSync(file, stringify({ groups: renderedRule().spec.groups }));
    const chart = run(promtool, ['check', 'rules', file]);
    expect(chart.stdout + chart.stderr).toContain('SUCCESS: 7 rules found');
  });

  test('check config: the example scrape job and rule file for Prometheus without the Operator', () => {
    const r = run(promtool, ['check', 'config', join(observabilityDir, 'prometheus.yaml')]);
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({
      status: 0,
      out: expect.stringContaining('SUCCESS: 7 rules found'),
    });
  });

  test('test rules: deploy/observability/alerts.test.yaml (series in, alerts out)', () => {
    const r = run(promtool, ['test', 'rules', join(observabilityDir, 'alerts.test.yaml')]);
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({
      status: 0,
      out: expect.stringContaining('SUCCESS'),
    });
  });
});

// The chart's monitoring objects, rendered (no Prometheus Operator CRDs on the stack to apply them to).
type Doc = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> };
let helmBin: string | undefined;
function render(...set: string[]): Doc[] {
  helmBin ??= built('build-helm.sh');
  const out = execFileSync(
    helmBin,
    [
      'template',
      'obs',
      chartDir,
      '--namespace',
      'sss-obs',
      '--kube-version',
      '1.36.3',
      ...set.flatMap((s) => ['--set', s]),
    ],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as Doc)
    .filter(Boolean);
}
function renderedRule(...set: string[]): { metadata: Doc['metadata']; spec: RuleFile } {
  return render('monitoring.prometheusRule.enabled=true', ...set).find(
    (d) => d.kind === 'PrometheusRule',
  ) as unknown as { metadata: Doc['metadata']; spec: RuleFile };
}

describe('chart', () => {
  test("no PodMonitor or PrometheusRule unless asked for (they need the Prometheus Operator's CRDs)", () => {
    const kinds = render().map((d) => d.kind);
    expect(kinds).toContain('Deployment');
    expect(kinds).not.toContain('PodMonitor');
    expect(kinds).not.toContain('PrometheusRule');
  }, 60_000);

  test("the PodMonitor scrapes both containers' metrics ports by name, honouring the expiry series' own namespace label", () => {
    const docs = render(
      'monitoring.podMonitor.enabled=true',
      'monitoring.podMonitor.labels.release=kps',
      'metrics.managerPort=9001',
      'metrics.providerPort=9002',
    );
    const pm = docs.find((d) => d.kind === 'PodMonitor')!;
    expect(pm.metadata.labels).toMatchObject({ release: 'kps' });
    const endpoints = pm.spec.podMetricsEndpoints as { port: string; path: string; honorLabels: boolean }[];
    const pod = (
      docs.find((d) => d.kind === 'Deployment')!.spec as {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { name: string; args: string[]; ports: { name: string; containerPort: number }[] }[] };
        };
      }
    ).template;
    expect(pm.spec.selector).toEqual({ matchLabels: pod.metadata.labels });
    // Each endpoint is a named port of one container, and that port is where the container serves /metrics.
    const served = endpoints.map((e) => {
      const c = pod.spec.containers.find((x) => x.ports.some((p) => p.name === e.port))!;
      const port = c.ports.find((p) => p.name === e.port)!.containerPort;
      return {
        container: c.name,
        port,
        flag: c.args.includes(`--metrics-port=${port}`),
        path: e.path,
        honorLabels: e.honorLabels,
      };
    });
    expect(served).toEqual([
      { container: 'manager', port: 9001, flag: true, path: '/metrics', honorLabels: true },
      { container: 'provider-azure-installer', port: 9002, flag: true, path: '/metrics', honorLabels: true },
    ]);
  }, 60_000);

  test('the PrometheusRule holds the groups of deploy/observability/alerts.yaml; its expiry window follows expiryWarningDays', () => {
    const rule = renderedRule('monitoring.prometheusRule.labels.release=kps');
    expect(rule.metadata.labels).toMatchObject({ release: 'kps' });
    expect(rule.spec).toEqual(loadAlerts());
    const week = renderedRule('expiryWarningDays=7').spec.groups[0]!.rules.find(
      (r) => r.alert === 'SecretSyncObjectExpiringSoon',
    )!;
    expect(week.expr).toContain('< (7 * 86400)');
    expect(week.expr).not.toContain('30 * 86400');
  }, 60_000);
});
