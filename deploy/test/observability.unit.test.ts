// The dashboard and alert rules in deploy/observability/, without a stack: they parse, the chart
// carries the same rules, the failure reasons are the manager's, every alert has its runbook, and
// the PromQL reference checker (used against a real scrape in observability.int.test.ts) catches
// the mistakes it is there for.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REASONS } from '../../controller/src/reasons.js';
import {
  alertQueries,
  chartDir,
  dashboardQueries,
  loadAlerts,
  loadDashboard,
  observabilityDir,
} from './observability-files.js';
import { checkExpr, parseExposition } from './promql-refs.js';

const FAILURES = Object.keys(REASONS)
  .filter((r) => !r.endsWith('Succeeded'))
  .sort();
const TARGET = new Set(['job', 'instance', 'container', 'pod']);
const readme = readFileSync(join(observabilityDir, '..', '..', 'README.md'), 'utf8');

test("the chart's copy of the rules is deploy/observability/alerts.yaml (run deploy/observability/sync-chart.sh after editing it)", () => {
  expect(readFileSync(join(chartDir, 'files', 'alerts.yaml'), 'utf8')).toBe(
    readFileSync(join(observabilityDir, 'alerts.yaml'), 'utf8'),
  );
});

test('every alert has a severity, a summary, a description that says what to do, and a runbook section in the README', () => {
  const rules = loadAlerts().groups.flatMap((g) => g.rules);
  expect(rules.map((r) => r.alert)).toEqual([
    'SecretSyncFailing',
    'SecretSyncObjectExpiringSoon',
    'SecretSyncObjectExpired',
    'KeyVaultThrottling',
    'SecretStoreProviderUnreachable',
    'SecretStoreProviderNoSuccessfulCalls',
    'SecretStoreManagerNotLeading',
  ]);
  for (const r of rules) {
    expect([r.alert, r.labels?.severity]).toEqual([r.alert, expect.stringMatching(/^(warning|critical)$/)]);
    expect([r.alert, r.annotations?.summary]).toEqual([r.alert, expect.any(String)]);
    expect([r.alert, r.annotations?.description]).toEqual([
      r.alert,
      expect.stringContaining(`Runbook: README, "Alerts and runbooks", ${r.alert}.`),
    ]);
    expect([r.alert, readme.includes(`\n#### ${r.alert}\n`)]).toEqual([r.alert, true]);
  }
});

test('"failing" means exactly the manager\'s failure reasons, in the alerts and in the dashboard', () => {
  const failing = loadAlerts().groups[0]!.rules.find((r) => r.alert === 'SecretSyncFailing')!;
  const inAlert = /reason=~"([^"]+)"/.exec(failing.expr)![1]!.split('|').sort();
  expect(inAlert).toEqual(FAILURES);
  const panel = dashboardQueries().find((q) => q.where.startsWith('dashboard panel "Failing SecretSyncs'))!;
  expect(/reason=~"([^"]+)"/.exec(panel.expr)![1]!.split('|').sort()).toEqual(FAILURES);
  // The provider-error alert names the two provider reasons.
  const provider = loadAlerts().groups[0]!.rules.find((r) => r.alert === 'SecretStoreProviderNoSuccessfulCalls')!;
  expect(/reason=~"([^"]+)"/.exec(provider.expr)![1]!.split('|').sort()).toEqual(
    FAILURES.filter((r) => r.endsWith('ProviderError')),
  );
});

test('the dashboard is importable: unique panel ids, every query on the chosen data source, panels do not overlap, known variables only', () => {
  const d = loadDashboard();
  expect(d.uid).toBe('secret-store-sync');
  expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length);
  expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'container']);
  for (const p of d.panels.filter((x) => x.type !== 'row')) {
    expect([p.title, p.datasource]).toEqual([p.title, { type: 'prometheus', uid: '${datasource}' }]);
    expect([p.title, p.targets?.length]).toEqual([p.title, expect.any(Number)]);
    for (const t of p.targets!) expect([p.title, t.datasource]).toEqual([p.title, p.datasource]);
  }
  const cells = new Map<string, string>();
  for (const p of d.panels) {
    const h = p.type === 'row' ? 1 : p.gridPos.h;
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + h; y++) {
        expect([`${x},${y}`, cells.get(`${x},${y}`)]).toEqual([`${x},${y}`, undefined]);
        cells.set(`${x},${y}`, p.title);
      }
    }
  }
  // dashboardQueries() interpolates every variable and throws on one the dashboard does not define.
  expect(dashboardQueries().length).toBeGreaterThan(20);
});

test('the dashboard covers what an operator asked for', () => {
  const exprs = dashboardQueries()
    .map((q) => q.expr)
    .join('\n');
  for (const metric of [
    'secretsync_reconciles_total',
    'secretsync_queue_depth',
    'secretsync_queue_wait_seconds_bucket',
    'secretsync_provider_call_duration_seconds_bucket',
    'secretsync_provider_call_duration_seconds_count',
    'keyvault_requests_total',
    'secretsync_token_requests_total',
    'secretsync_object_expiry_timestamp_seconds',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
    'secretsync_leader',
  ])
    expect([metric, exprs.includes(metric)]).toEqual([metric, true]);
  expect(exprs).toContain('status="429"');
});

test('every query parses as PromQL', () => {
  const scrape = parseExposition('');
  for (const q of [...dashboardQueries(), ...alertQueries()]) {
    // An empty scrape: only syntax errors matter here; the int test checks names and labels.
    const syntax = checkExpr(q.expr, scrape, { targetLabels: TARGET }).problems.filter((p) => p.startsWith('syntax'));
    expect([q.where, syntax]).toEqual([q.where, []]);
  }
});

describe('the PromQL reference checker', () => {
  const scrape = parseExposition(
    [
      '# HELP secretsync_reconciles_total x',
      '# TYPE secretsync_reconciles_total counter',
      'secretsync_reconciles_total{reason="CreateSucceeded"} 3',
      'secretsync_reconciles_total{reason="ControllerSpcError"} 1',
      'secretsync_queue_wait_seconds_bucket{le="0.1",lane="fast"} 2',
      'secretsync_queue_wait_seconds_bucket{le="+Inf",lane="fast"} 2',
      'secretsync_leader 1',
      'odd{v="a \\"quoted\\" \\\\ value"} 1',
    ].join('\n'),
  );
  const check = (expr: string, outputLabels: string[] = []) =>
    checkExpr(expr, scrape, { targetLabels: TARGET, outputLabels }).problems;

  test('reads label values with escapes', () => {
    expect([...scrape.get('odd')!.get('v')!]).toEqual(['a "quoted" \\ value']);
  });
  test('passes a correct query', () => {
    expect(
      check('sum by (reason) (rate(secretsync_reconciles_total{job=~".*", reason=~"Controller.*"}[5m]))', ['reason']),
    ).toEqual([]);
    expect(
      check('histogram_quantile(0.9, sum by (le, lane) (rate(secretsync_queue_wait_seconds_bucket[5m])))', ['lane']),
    ).toEqual([]);
    expect(check('sum(secretsync_leader) == 0 or absent(secretsync_leader)')).toEqual([]);
  });
  test('a misspelt metric', () => {
    expect(check('rate(secretsync_reconcile_total[5m])')).toEqual([
      expect.stringContaining("metric 'secretsync_reconcile_total' is not in the scrape"),
    ]);
  });
  test('a label the metric does not have, and a value it never takes', () => {
    expect(check('secretsync_reconciles_total{status="x"}')).toEqual([expect.stringContaining("label 'status'")]);
    expect(check('secretsync_reconciles_total{reason="CreateFailed"}')).toEqual([
      expect.stringContaining('no such value'),
    ]);
    expect(check('secretsync_reconciles_total{reason=~"Update.*"}')).toEqual([
      expect.stringContaining('matches no value'),
    ]);
  });
  test('grouping by a label the input lacks, and printing one the aggregation dropped', () => {
    expect(check('sum by (lane) (secretsync_reconciles_total)')).toEqual([expect.stringContaining("label 'lane'")]);
    expect(check('sum by (reason) (secretsync_reconciles_total)', ['pod'])).toEqual([
      expect.stringContaining("label 'pod' (printed from the result)"),
    ]);
    expect(check('histogram_quantile(0.9, sum by (lane) (rate(secretsync_queue_wait_seconds_bucket[5m])))')).toEqual([
      expect.stringContaining("label 'le'"),
    ]);
    expect(check('secretsync_reconciles_total / on (lane) secretsync_leader')).toHaveLength(2);
  });
  test('target labels (job, container, …) are allowed on any metric; a syntax error is reported', () => {
    expect(check('process_x{job="a"}')).toEqual([expect.stringContaining("metric 'process_x'")]);
    expect(check('secretsync_leader{container="manager"}', ['pod'])).toEqual([]);
    expect(check('sum(rate(secretsync_leader[5m])')).toEqual([expect.stringContaining('syntax error')]);
  });
  test('each name of a {__name__=~"a|b"} selector must exist', () => {
    expect(check('{__name__=~"secretsync_leader|nope"}')).toEqual([expect.stringContaining("metric 'nope'")]);
  });
});
