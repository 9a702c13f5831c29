// The chart's values.schema.json, which helm checks before it renders (install, upgrade, template,
// lint): every value of values.yaml is in it, the chart's own objects are closed so a misspelt
// value fails instead of being ignored, and its numeric bounds are those the flags accept, so a
// value the processes would refuse fails the install, not the pod. (helm itself applies the
// schema in deploy/test/chart.int.test.ts.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig as parseManagerConfig } from '../../controller/src/config.js';
import { parseConfig as parseProviderConfig } from '../../provider-azure/src/config.js';
import { repoRoot } from '../../test/env/control-plane.js';

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minimum?: number;
  maximum?: number;
};
const chartDir = join(repoRoot, 'deploy', 'chart', 'secret-store-sync');
const values = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Schema & {
  definitions: Record<string, Schema>;
};
const resolve = (s: Schema): Schema => (s.$ref ? resolve(schema.definitions[s.$ref.split('/').pop()!]!) : s);

/**
 * Objects passed to Kubernetes as they are (their schema is Kubernetes'), so left open. Any other
 * object of values.yaml must be closed or a typed map.
 */
const KUBERNETES_OBJECTS = new Set(['affinity', 'tolerations[]', 'networkPolicy.metricsFrom[]']);

/** Where values.yaml and the schema disagree: a value the schema lacks, or one it names that values.yaml lacks. */
function mismatches(value: unknown, node: Schema, path: string): string[] {
  const s = resolve(node);
  if (!s.type && !s.enum && !s.anyOf) return [`${path}: no type in the schema`];
  if (Array.isArray(value)) return value.flatMap((v) => (s.items ? mismatches(v, s.items, `${path}[]`) : []));
  if (value === null || typeof value !== 'object' || KUBERNETES_OBJECTS.has(path)) return [];
  const at = (k: string) => (path ? `${path}.${k}` : k);
  const entries = Object.entries(value);
  if (typeof s.additionalProperties === 'object')
    return entries.flatMap(([k, v]) => mismatches(v, s.additionalProperties as Schema, at(k)));
  if (s.additionalProperties !== false) return [`${path}: an object the schema leaves open`];
  const lacking = entries.filter(([k]) => !s.properties?.[k]).map(([k]) => `${at(k)}: not in the schema`);
  const extra = Object.keys(s.properties ?? {})
    .filter((k) => !(k in value) && !(path === '' && k === 'global'))
    .map((k) => `${at(k)}: in the schema, not in values.yaml`);
  return [
    ...lacking,
    ...extra,
    ...entries.filter(([k]) => s.properties?.[k]).flatMap(([k, v]) => mismatches(v, s.properties![k]!, at(k))),
  ];
}

test('every value of values.yaml is in values.schema.json, typed, in closed objects; the schema names nothing else', () => {
  expect(mismatches(values, schema, '')).toEqual([]);
});

test('mismatches finds a value the schema lacks, and an object left open (the check above can fail)', () => {
  expect(mismatches({ ...values, rotationPollIntervalInSecond: 60 }, schema, '')).toEqual([
    'rotationPollIntervalInSecond: not in the schema',
  ]);
  expect(
    mismatches(values, { ...schema, properties: { ...schema.properties, provider: { type: 'object' } } }, ''),
  ).toEqual(['provider: an object the schema leaves open']);
});

/** A chart value, the process and flag it becomes, and what else the flag needs to parse. */
const FLAGS: { value: string; process: 'manager' | 'provider'; flag: string; with?: string[] }[] = [
  { value: 'rotationPollIntervalInSeconds', process: 'manager', flag: 'rotation-poll-interval-seconds' },
  { value: 'expiryWarningDays', process: 'manager', flag: 'expiry-warning-days' },
  { value: 'workers', process: 'manager', flag: 'workers' },
  { value: 'workersPerNamespace', process: 'manager', flag: 'workers-per-namespace', with: ['--workers=512'] },
  { value: 'expiryCheckMinIntervalSeconds', process: 'manager', flag: 'expiry-check-min-interval-seconds' },
  { value: 'metrics.expirySeriesPerSecretSync', process: 'manager', flag: 'max-expiry-series-per-secretsync' },
  { value: 'metrics.expirySeriesTotal', process: 'manager', flag: 'max-expiry-series' },
  { value: 'metrics.managerPort', process: 'manager', flag: 'metrics-port' },
  { value: 'metrics.providerPort', process: 'provider', flag: 'metrics-port' },
  { value: 'provider.maxObjectsPerMount', process: 'provider', flag: 'max-objects-per-mount' },
  { value: 'provider.maxReadsPerMount', process: 'provider', flag: 'max-reads-per-mount' },
  { value: 'provider.readShareSeconds', process: 'provider', flag: 'read-share-seconds' },
  { value: 'provider.changeEvents.pollSeconds', process: 'provider', flag: 'change-queue-poll-seconds' },
  { value: 'provider.changeEvents.readShareSeconds', process: 'provider', flag: 'read-share-seconds-with-events' },
];
function schemaAt(path: string): Schema {
  const s = path.split('.').reduce((s, k) => resolve(s).properties![k]!, schema as Schema);
  return resolve(s).anyOf?.find((a) => a.type === 'integer') ?? resolve(s);
}
const accepts = (process: 'manager' | 'provider', argv: string[]) => {
  try {
    if (process === 'manager') parseManagerConfig(argv, {});
    else parseProviderConfig(argv);
    return true;
  } catch {
    return false;
  }
};

test.each(FLAGS)("$value: the schema's bounds are what --$flag accepts", ({ value, process, flag, ...rest }) => {
  const { minimum, maximum } = schemaAt(value);
  const at = (n: number) => accepts(process, [...(rest.with ?? []), `--${flag}=${n}`]);
  // A port of 0 turns the listener off for the process; the chart always serves /metrics.
  const lowest = flag === 'metrics-port' ? 1 : undefined;
  expect({ min: at(minimum!), belowMin: lowest === undefined && at(minimum! - 1) }).toEqual({
    min: true,
    belowMin: false,
  });
  expect({ max: at(maximum!), aboveMax: at(maximum! + 1) }).toEqual({ max: true, aboveMax: false });
});
