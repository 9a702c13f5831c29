// The README's figures are the defaults they describe: the chart's values table against
// values.yaml, the manager's and provider-azure's flag tables against the flags' defaults, and the
// limits in "What a namespace user can do" against both. A default changed without its README
// line (or the other way round) fails here.
import { MAX_TRAILER_BYTES, PKCS12_ITERATION_BUDGET } from '@secret-store-sync/proto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseConfig as parseManagerConfig, type Config as ManagerConfig } from '../controller/src/config.js';
import { parseConfig as parseProviderConfig, type Config as ProviderConfig } from '../provider-azure/src/config.js';
import { MAX_CHAIN_ORDERED } from '../provider-azure/src/content.js';
import { repoRoot } from './env/control-plane.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const values = parseYaml(
  readFileSync(join(repoRoot, 'deploy', 'chart', 'secret-store-sync', 'values.yaml'), 'utf8'),
) as Record<string, unknown>;
const manager = parseManagerConfig([], {}) as ManagerConfig;
const provider = parseProviderConfig([]) as ProviderConfig;

/** The README between a heading and the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no heading '${heading}'`);
  const level = /^#+/.exec(heading)![0];
  const rest = readme.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\\n#{1,${level.length}} `));
  return end < 0 ? rest : rest.slice(0, end);
}
/** A table's rows as cells, for rows whose first cell names things in backticks. */
function rows(text: string): { names: string[]; cells: string[] }[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const cells = l.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''));
      return { names: [...cells[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!), cells };
    });
}
const UNITS: Record<string, number> = { KiB: 1024, MiB: 1024 ** 2 };
/**
 * The defaults a cell states, one per name: `x`, "" (empty) or `N MiB`, separated by commas, with
 * remarks in parentheses left out; undefined when the cell is prose.
 */
function stated(cell: string): string[] | undefined {
  const tokens = cell
    .replace(/\s*\([^)]*\)/g, '')
    .split(/,\s*/)
    .map((t) => {
      const unit = /^(\d+) (KiB|MiB)$/.exec(t);
      if (unit) return String(Number(unit[1]) * UNITS[unit[2]!]!);
      if (t === '""') return '';
      return /^`[^`]*`$/.test(t) ? t.slice(1, -1) : undefined;
    });
  return tokens.every((t) => t !== undefined) ? (tokens as string[]) : undefined;
}
const show = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.join(', ')}]`
    : v && typeof v === 'object'
      ? JSON.stringify(v) === '{}'
        ? '{}'
        : JSON.stringify(v)
      : String(v);
const valueAt = (path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], values);
const figure = (s: string) => Number(s.replace(/[\s,]/g, ''));

test("the chart's values table states values.yaml's defaults", () => {
  const table = rows(section('## Install into your cluster'));
  const compared: string[] = [];
  for (const { names, cells } of table) {
    const defaults = stated(cells[1]!);
    if (!defaults || defaults.length !== names.length) continue;
    names.forEach((name, i) => {
      expect({ name, readme: defaults[i] }).toEqual({ name, readme: show(valueAt(name)) });
      compared.push(name);
    });
  }
  // What the check must always cover (more rows are compared when they state plain defaults).
  expect(compared).toEqual(
    expect.arrayContaining([
      'rotationPollIntervalInSeconds',
      'workers',
      'workersPerNamespace',
      'expiryCheckMinIntervalSeconds',
      'provider.maxObjectsPerMount',
      'provider.maxReadsPerMount',
      'metrics.managerPort',
      'metrics.providerPort',
      'metrics.expirySeriesPerSecretSync',
      'metrics.expirySeriesTotal',
      'hostNetwork',
    ]),
  );
  // Stated in prose: the Secret types and the resources.
  const types = table.find((r) => r.names[0] === 'allowedSecretTypes')!.cells[1]!.split(', ');
  expect(types).toEqual((values.allowedSecretTypes as string[]).map((t) => t.replace(/^kubernetes\.io\//, '')));
  const resources = values.resources as Record<
    'manager' | 'provider',
    Record<'requests' | 'limits', { cpu: string; memory: string }>
  >;
  const row = table.find((r) => r.names[0] === 'resources.manager')!.cells[1]!;
  const [, mCpu, mMem, pCpu, pMem, lCpu, lMem] =
    /^requests (\S+)\/(\S+) and (\S+)\/(\S+), limits (\S+)\/(\S+) each$/.exec(row)!;
  expect({ mCpu, mMem, pCpu, pMem }).toEqual({
    mCpu: resources.manager.requests.cpu,
    mMem: resources.manager.requests.memory,
    pCpu: resources.provider.requests.cpu,
    pMem: resources.provider.requests.memory,
  });
  for (const c of ['manager', 'provider'] as const) expect(resources[c].limits).toEqual({ cpu: lCpu, memory: lMem });
  expect(readme).toContain(`against limits of ${lMem!.replace('Mi', ' MiB')} each`);
});

describe.each([
  { process: 'manager', heading: '## Reference: the manager', parse: (argv: string[]) => parseManagerConfig(argv, {}) },
  { process: 'provider-azure', heading: '### Flags', parse: (argv: string[]) => parseProviderConfig(argv) },
])("$process's flag table", ({ heading, parse }) => {
  const defaults = parse([]);
  const table = rows(section(heading)).filter((r) => r.names.every((n) => n.startsWith('--')));
  const pairs = table.flatMap(({ names, cells }) => {
    const said = stated(cells[1]!);
    // An environment variable ($POD_NAMESPACE) is no literal default.
    return said && said.length === names.length
      ? names.map((flag, i) => ({ flag, said: said[i]! })).filter((p) => !p.said.startsWith('$'))
      : [];
  });

  test("each default it states is the flag's: passing it changes nothing, passing another does", () => {
    for (const { flag, said } of pairs) {
      expect({ flag, said, same: parse([`${flag}=${said}`]) }).toEqual({ flag, said, same: defaults });
      const other = /^\d+$/.test(said) ? String(Number(said) + 1) : said === 'true' ? 'false' : undefined;
      if (other === undefined) continue;
      let changed: unknown;
      try {
        changed = parse([`${flag}=${other}`]);
      } catch {
        changed = 'refused';
      }
      expect({ flag, other, changed }).not.toEqual({ flag, other, changed: defaults });
    }
  });

  test('the flags whose figures the README relies on are among those checked', () => {
    const checked = pairs.map((p) => p.flag);
    const must =
      heading === '### Flags'
        ? [
            '--max-objects-per-mount',
            '--max-reads-per-mount',
            '--mount-read-concurrency',
            '--max-identities',
            '--max-vaults',
            '--cache-auth-window-seconds',
            '--healthz-check-interval-seconds',
            '--vault-request-timeout-seconds',
            '--max-mount-bytes',
          ]
        : [
            '--workers',
            '--rotation-poll-interval-seconds',
            '--expiry-warning-days',
            '--expiry-check-min-interval-seconds',
            '--max-expiry-series-per-secretsync',
            '--max-expiry-series',
            '--provider-timeout-seconds',
            '--token-expiration-seconds',
            '--max-message-bytes',
          ];
    expect(checked).toEqual(expect.arrayContaining(must));
  });
});

test('"What a namespace user can do": its limits are the defaults', () => {
  const text = section('## Security').replace(/\s+/g, ' ');
  const find = (re: RegExp) => {
    const m = re.exec(text);
    if (!m) throw new Error(`the README no longer says ${re}`);
    return m.slice(1);
  };
  const [objects, reads] = find(
    /ask for up to ([\d ]+) objects and ([\d ]+) Key Vault reads per Mount \(`provider\.maxObjectsPerMount`, `maxReadsPerMount`\)/,
  );
  expect([figure(objects!), figure(reads!)]).toEqual([provider.maxObjectsPerMount, provider.maxReadsPerMount]);
  expect([figure(objects!), figure(reads!)]).toEqual([
    valueAt('provider.maxObjectsPerMount'),
    valueAt('provider.maxReadsPerMount'),
  ]);
  expect(figure(find(/a Mount runs (\d+) reads at a time/)[0]!)).toBe(provider.mountReadConcurrency);
  find(/`--workers-per-namespace` workers \(default half of `--workers`, rounded up\)/);
  expect(manager.workersPerNamespace).toBe(Math.ceil(manager.workers / 2));
  const [floor] = find(/at most once per `--expiry-check-min-interval-seconds` \((\d+)\) per SecretSync/);
  expect([figure(floor!), figure(floor!)]).toEqual([
    manager.expiryCheckMinIntervalSeconds,
    valueAt('expiryCheckMinIntervalSeconds'),
  ]);
  const [perSync, total] = find(
    /`metrics\.expirySeriesPerSecretSync` \((\d+)\) series per SecretSync and `metrics\.expirySeriesTotal` \(([\d ]+)\) in all/,
  );
  expect([figure(perSync!), figure(total!)]).toEqual([manager.maxExpirySeriesPerSecretSync, manager.maxExpirySeries]);
  expect([figure(perSync!), figure(total!)]).toEqual([
    valueAt('metrics.expirySeriesPerSecretSync'),
    valueAt('metrics.expirySeriesTotal'),
  ]);
  find(/within the last minute \(`--cache-auth-window-seconds`\)/);
  expect(provider.cacheAuthWindowSeconds).toBe(60);
  expect(
    figure(
      find(
        /a self-check that runs every (\d+) s over the provider's socket \(`--healthz-check-interval-seconds`\)/,
      )[0]!,
    ),
  ).toBe(provider.healthzCheckIntervalSeconds);
  expect(figure(find(/a trailer over (\d+) KiB/)[0]!) * 1024).toBe(MAX_TRAILER_BYTES);
  expect(figure(find(/a file may ask for ([\d ]+) key-derivation iterations in all/)[0]!)).toBe(
    PKCS12_ITERATION_BUDGET,
  );
  expect(figure(find(/one signature check per certificate, at most (\d+) ordered/)[0]!)).toBe(MAX_CHAIN_ORDERED);
});

test('the rotation and expiry defaults stated in prose', () => {
  const text = readme.replace(/\s+/g, ' ');
  const minutes = /Checks of one SecretSync are at least `--expiry-check-min-interval-seconds` \((\d+) minutes\)/.exec(
    text,
  );
  expect(Number(minutes?.[1]) * 60).toBe(manager.expiryCheckMinIntervalSeconds);
  const days = /\(Helm `expiryWarningDays`, default (\d+)\)/.exec(text);
  expect([Number(days?.[1]), Number(days?.[1]) * 86_400]).toEqual([
    valueAt('expiryWarningDays'),
    manager.expiryWarningSeconds,
  ]);
  expect(valueAt('rotationPollIntervalInSeconds')).toBe(manager.rotationIntervalSeconds);
});
