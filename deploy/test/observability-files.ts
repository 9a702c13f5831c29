// The queries in deploy/observability/ (Grafana dashboard, alert rules), each with what it prints,
// for the checks in observability.unit.test.ts and observability.int.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { interpolate } from './promql-refs.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const observabilityDir = join(here, '..', 'observability');
export const chartDir = join(here, '..', 'chart', 'secret-store-sync');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; legendFormat?: string; refId: string; datasource?: { type: string; uid: string } }[];
}
export interface Variable {
  type: string;
  name: string;
  query?: string | { query: string };
  allValue?: string;
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

export const loadAlerts = (): RuleFile =>
  parse(readFileSync(join(observabilityDir, 'alerts.yaml'), 'utf8')) as RuleFile;
export const loadDashboard = (): Dashboard =>
  JSON.parse(readFileSync(join(observabilityDir, 'grafana-dashboard.json'), 'utf8')) as Dashboard;

/** Values Grafana substitutes; `.*` stands for a multi-value variable set to All. */
export const GRAFANA_VARS: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '1h',
  datasource: 'prometheus',
  job: '.*',
  container: '.*',
};

export interface Query {
  where: string;
  expr: string;
  /** Labels the query's result must carry to print what it prints. */
  outputLabels: string[];
}

const placeholders = (s: string | undefined, re: RegExp): string[] => [...(s ?? '').matchAll(re)].map((m) => m[1]!);

export function dashboardQueries(d: Dashboard = loadDashboard()): Query[] {
  const out: Query[] = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? []) {
      out.push({
        where: `dashboard panel "${p.title}" ${t.refId}`,
        expr: interpolate(t.expr, GRAFANA_VARS),
        outputLabels: placeholders(t.legendFormat, /\{\{\s*(\w+)\s*\}\}/g),
      });
    }
  }
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const q = typeof v.query === 'string' ? v.query : v.query!.query;
    // label_values(selector, label) is Grafana's, not PromQL: the selector is, and must carry the label.
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: not a label_values() query: ${q}`);
    out.push({ where: `dashboard variable $${v.name}`, expr: interpolate(m[1]!, GRAFANA_VARS), outputLabels: [m[2]!] });
  }
  return out;
}

export function alertQueries(f: RuleFile = loadAlerts()): Query[] {
  return f.groups.flatMap((g) =>
    g.rules.map((r) => ({
      where: `alert ${r.alert}`,
      expr: r.expr,
      outputLabels: [
        ...new Set(Object.values(r.annotations ?? {}).flatMap((a) => placeholders(a, /\$labels\.(\w+)/g))),
      ],
    })),
  );
}
