// The manager's command line, parsed once into a typed Config.
import { errorMessage, flagUsage, parseArgsOptions, type FlagTable } from '@secret-store-sync/proto';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { PROVIDER_NAME } from './provider.js';

export interface Config {
  kubeconfig?: string;
  /** Watch one namespace only ("" = all). */
  namespace: string;
  /** Handle SecretSyncs whose spec.secretSyncControllerName equals this. */
  controllerName: string;
  providerDir: string;
  /**
   * Provider name → the audiences of the tokens the manager mints for it (one TokenRequest each);
   * a provider not listed gets no token.
   */
  providerTokenAudiences: ReadonlyMap<string, readonly string[]>;
  tokenExpirationSeconds: number;
  rotationIntervalSeconds: number;
  /** How old a shared provider result a scheduled rotation may take (see shared-mounts.ts); 0 = never share. */
  rotationShareSeconds: number;
  /** An object expiring within this many seconds sets the Expiring condition (0 = only once expired). */
  expiryWarningSeconds: number;
  /** Expiry-driven status checks of one SecretSync at most this often (expiry-checks.ts). */
  expiryCheckMinIntervalSeconds: number;
  /** Caps of the object expiry series (expiry-series.ts): per SecretSync, and in all. */
  maxExpirySeriesPerSecretSync: number;
  maxExpirySeries: number;
  /** Caps of the change-key index (change-index.ts): per SecretSync, and in all. */
  maxChangeKeysPerSecretSync: number;
  maxChangeKeys: number;
  workers: number;
  /** Workers one namespace may hold while another namespace has work waiting (fair share, queue.ts). */
  workersPerNamespace: number;
  providerTimeoutSeconds: number;
  maxMessageBytes: number;
  hashKeyFile?: string;
  allowedSecretTypes: string[];
  healthPort: number;
  metricsPort: number;
  /** Where /healthz and /readyz listen, and where /metrics does (IP literals). */
  healthBindAddress: string;
  metricsBindAddress: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationSeconds: number;
  podName: string;
  podUid: string;
  shutdownGraceSeconds: number;
  /** Deadline of every apiserver call (watches excepted). */
  apiTimeoutSeconds: number;
  /** Rollout restarts of opted-in workloads (restarts.ts). */
  restarts: { enabled: boolean; debounceSeconds: number; minIntervalSeconds: number };
}

// Not bootstrap.kubernetes.io/token: whoever may create SecretSyncs in kube-system could then write
// node-join credentials from their own vault. An operator who needs it lists it.
export const DEFAULT_ALLOWED_TYPES = [
  'Opaque',
  'kubernetes.io/basic-auth',
  'kubernetes.io/tls',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
  'kubernetes.io/ssh-auth',
];

// Never written, whatever --allowed-secret-types says: a SecretSync could otherwise plant a token the
// token controller fills for any ServiceAccount of its namespace (README, Security). The chart's
// admission policy refuses it too, but the manager must not rely on being installed by the chart.
export const FORBIDDEN_SECRET_TYPES: readonly string[] = ['kubernetes.io/service-account-token'];

/**
 * Workload identity's audience, for provider-azure only: Entra exchanges a token for it for the
 * workload's Azure identity, so no other provider may see one unless an operator says so.
 */
export const DEFAULT_PROVIDER_TOKEN_AUDIENCES: ReadonlyMap<string, readonly string[]> = new Map([
  ['azure', ['api://AzureADTokenExchange']],
]);

/** The default as the flag spells it, for --help and messages. */
const DEFAULT_PROVIDER_TOKEN_AUDIENCES_FLAG = [...DEFAULT_PROVIDER_TOKEN_AUDIENCES]
  .map(([provider, audiences]) => `${provider}=${audiences.join(',')}`)
  .join(' ');

// Every flag, with what `--help` says of it (proto's flags.ts makes the parser's options and the
// help from this one table). Add a flag here and nowhere else.
export const FLAGS = {
  kubeconfig: { type: 'string', help: 'kubeconfig file for API access; default: in-cluster, else $KUBECONFIG.' },
  namespace: { type: 'string', default: '', help: 'watch this namespace only; empty: all namespaces.' },
  'controller-name': {
    type: 'string',
    default: '',
    help: 'handle only the SecretSyncs whose spec.secretSyncControllerName equals this.',
  },
  'provider-dir': { type: 'string', default: '/provider', help: "folder of the providers' sockets, <provider>.sock." },
  'provider-token-audiences': {
    type: 'string',
    // What --help shows; the parser's option (EXTRA_OPTIONS) has none: entries go over this one.
    default: DEFAULT_PROVIDER_TOKEN_AUDIENCES_FLAG,
    help: 'PROVIDER=AUDIENCE[,AUDIENCE…], repeated once per provider: the audiences of the ServiceAccount tokens minted for that provider alone, over the default; a provider not named gets no token, PROVIDER= sends it none.',
  },
  'token-expiration-seconds': {
    type: 'string',
    default: '600',
    help: 'lifetime of those tokens (600 to 86400); a token is reused until 80 % of it.',
  },
  'rotation-poll-interval-seconds': {
    type: 'string',
    default: '3600',
    help: 'how often each SecretSync is re-checked (±10 % jitter); 0 turns rotation off.',
  },
  'rotation-share-seconds': {
    type: 'string',
    default: '',
    help: 'how old a provider result another SecretSync fetched with the same Mount a rotation may take; 0: never share; default: a tenth of the rotation interval, at most 300.',
  },
  'expiry-warning-days': {
    type: 'string',
    default: '30',
    help: 'an object expiring within this many days sets the Expiring condition; 0: only once expired.',
  },
  'expiry-check-min-interval-seconds': {
    type: 'string',
    default: '300',
    help: 'expiry-driven status checks of one SecretSync at most this often (1 to 86400).',
  },
  'max-expiry-series-per-secretsync': {
    type: 'string',
    default: '20',
    help: 'most secretsync_object_expiry_timestamp_seconds series per SecretSync, the soonest expiries kept; 0 exports none.',
  },
  'max-expiry-series': {
    type: 'string',
    default: '10000',
    help: 'most of those series in all, the soonest expiries kept; 0 exports none.',
  },
  'max-change-keys-per-secretsync': {
    type: 'string',
    default: '100',
    help: "most change keys (a provider's names for objects, in its change notices) remembered per SecretSync; its other objects are polled only; 0 turns change notices off.",
  },
  'max-change-keys': {
    type: 'string',
    default: '100000',
    help: 'most change keys remembered in all; when reached, the namespace holding the most gives way.',
  },
  workers: { type: 'string', default: '10', help: 'SecretSyncs reconciled at once (1 to 512).' },
  'workers-per-namespace': {
    type: 'string',
    default: '',
    help: 'workers one namespace may hold while another namespace has work waiting (1 to --workers); default: half of --workers, rounded up.',
  },
  'provider-timeout-seconds': { type: 'string', default: '30', help: 'deadline of one provider call.' },
  'max-message-bytes': {
    type: 'string',
    default: String(4 * 1024 * 1024),
    help: 'largest provider response accepted (64 KiB to 64 MiB).',
  },
  'hash-key-file': {
    type: 'string',
    help: 'file holding the key of the change hash (mount it from a Secret, so a restart does not rewrite every Secret); default: a key generated per process.',
  },
  'allowed-secret-types': {
    type: 'string',
    default: DEFAULT_ALLOWED_TYPES.join(','),
    help: 'comma-separated Secret types the manager writes; bootstrap.kubernetes.io/token only if listed, kubernetes.io/service-account-token never.',
  },
  'health-port': {
    type: 'string',
    default: '8081',
    help: 'port of /healthz and /readyz (ready once both caches are listed).',
  },
  'metrics-port': { type: 'string', default: '8085', help: 'port of /metrics (Prometheus).' },
  'http-bind-address': {
    type: 'string',
    default: '0.0.0.0',
    help: 'IP address the health and metrics listeners bind to, unless their own flags say otherwise (0.0.0.0 or :: for all).',
  },
  // Each defaults to --http-bind-address: health can stay on loopback (host network) while
  // metrics listen where Prometheus reaches them.
  'health-bind-address': {
    type: 'string',
    default: '',
    help: 'IP address of the health listener; default: --http-bind-address.',
  },
  'metrics-bind-address': {
    type: 'string',
    default: '',
    help: 'IP address of the metrics listener; default: --http-bind-address.',
  },
  'log-level': { type: 'string', default: 'info', help: 'error, warn, info or debug; JSON lines on stdout.' },
  'leader-elect': {
    type: 'string',
    default: 'false',
    help: 'true: managers share a Lease and only its holder works (for more than one replica).',
  },
  'leader-election-namespace': {
    type: 'string',
    default: '',
    help: 'namespace of the Lease; default: $POD_NAMESPACE, else default.',
  },
  'leader-election-id': { type: 'string', default: 'secret-store-sync-manager', help: 'name of the Lease.' },
  'lease-duration-seconds': {
    type: 'string',
    default: '15',
    help: 'how long a follower waits on an unchanged Lease before it takes over (5 to 600).',
  },
  'shutdown-grace-seconds': {
    type: 'string',
    default: '20',
    help: 'on SIGTERM, how long in-flight reconciles may finish before the Lease is handed back.',
  },
  'api-timeout-seconds': {
    type: 'string',
    default: '30',
    help: 'deadline of every apiserver call (watches excepted).',
  },
  restarts: {
    type: 'string',
    default: 'false',
    help: 'true: roll the Deployments, StatefulSets and DaemonSets that opted in when a SecretSync they name changes value (needs get, list and patch on them).',
  },
  'restart-debounce-seconds': {
    type: 'string',
    default: '30',
    help: "changes of one namespace's SecretSyncs within this many seconds of the first give one rollout per workload (1 to 3600).",
  },
  'restart-min-interval-seconds': {
    type: 'string',
    default: '300',
    help: 'at most one rollout per workload within this many seconds; a later change waits (0 to 86400).',
  },
  version: { type: 'boolean', default: false, help: 'print the version and exit.' },
  help: { type: 'boolean', default: false, help: 'print this text and exit.' },
} as const satisfies FlagTable;

/**
 * Parser options beyond the table's: --provider-token-audiences repeats (the table has no lists),
 * and flags that are gone are accepted only to be refused with what replaces them.
 */
const EXTRA_OPTIONS = {
  'provider-token-audiences': { type: 'string', multiple: true },
  'token-audiences': { type: 'string' },
} as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    /** The flag at fault, when one is. */ readonly flag?: string,
  ) {
    super(message);
  }
}

export function usage(): string {
  return flagUsage('Usage: secret-store-sync-manager [flags]', FLAGS);
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config | 'version' | 'help' {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...parseArgsOptions(FLAGS), ...EXTRA_OPTIONS },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new ConfigError(`${errorMessage(e)}\n${usage()}`);
  }
  if (values.version) return 'version';
  if (values.help) return 'help';
  if (values['token-audiences'] !== undefined)
    throw new ConfigError(
      `--token-audiences is no longer accepted: it sent every provider the same tokens, so any provider could act as the workload in Azure. ` +
        `Give each provider its own with --provider-token-audiences=PROVIDER=AUDIENCE[,AUDIENCE…] (repeatable; the default is ${DEFAULT_PROVIDER_TOKEN_AUDIENCES_FLAG}, and azure= sends azure none)`,
      'token-audiences',
    );
  const str = (k: keyof typeof FLAGS) => (values[k] === undefined ? '' : String(values[k]));
  const int = (k: keyof typeof FLAGS, min: number, max: number) => {
    const n = Number(str(k));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`--${k} must be a whole number from ${min} to ${max}, got '${str(k)}'`);
    return n;
  };
  const list = (k: keyof typeof FLAGS) =>
    str(k)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const allowedSecretTypes = list('allowed-secret-types');
  const forbidden = allowedSecretTypes.filter((t) => FORBIDDEN_SECRET_TYPES.includes(t));
  if (forbidden.length)
    throw new ConfigError(
      `--allowed-secret-types must not list ${forbidden.join(', ')}: the manager never writes service-account tokens`,
      'allowed-secret-types',
    );
  const logLevel = str('log-level');
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel))
    throw new ConfigError(`--log-level must be error, warn, info or debug, got '${logLevel}'`);
  const address = (k: keyof typeof FLAGS) => {
    const flag = str(k) ? k : 'http-bind-address';
    if (!isIP(str(flag)))
      throw new ConfigError(`--${flag} must be an IP address (0.0.0.0 or :: for all), got '${str(flag)}'`, flag);
    return str(flag);
  };
  const bool = (k: 'leader-elect' | 'restarts') => {
    const v = str(k).toLowerCase();
    if (v !== 'true' && v !== 'false') throw new ConfigError(`--${k} must be true or false, got '${str(k)}'`, k);
    return v === 'true';
  };
  const workers = int('workers', 1, 512);
  const rotationIntervalSeconds = int('rotation-poll-interval-seconds', 0, 31 * 86_400);
  // Default: a tenth of the interval (inside the rotation's own ±10 % jitter), at most 5 minutes.
  const rotationShareSeconds =
    str('rotation-share-seconds') === ''
      ? Math.min(300, Math.floor(rotationIntervalSeconds / 10))
      : int('rotation-share-seconds', 0, Math.max(0, rotationIntervalSeconds - 1));
  return {
    ...(str('kubeconfig') ? { kubeconfig: str('kubeconfig') } : {}),
    namespace: str('namespace'),
    controllerName: str('controller-name'),
    providerDir: str('provider-dir'),
    providerTokenAudiences: providerTokenAudiences((values['provider-token-audiences'] as string[] | undefined) ?? []),
    tokenExpirationSeconds: int('token-expiration-seconds', 600, 86_400),
    rotationIntervalSeconds,
    rotationShareSeconds,
    expiryWarningSeconds: int('expiry-warning-days', 0, 3650) * 86_400,
    expiryCheckMinIntervalSeconds: int('expiry-check-min-interval-seconds', 1, 86_400),
    maxExpirySeriesPerSecretSync: int('max-expiry-series-per-secretsync', 0, 10_000),
    maxExpirySeries: int('max-expiry-series', 0, 1_000_000),
    maxChangeKeysPerSecretSync: int('max-change-keys-per-secretsync', 0, 10_000),
    maxChangeKeys: int('max-change-keys', 0, 10_000_000),
    workers,
    workersPerNamespace:
      str('workers-per-namespace') === '' ? Math.ceil(workers / 2) : int('workers-per-namespace', 1, workers),
    providerTimeoutSeconds: int('provider-timeout-seconds', 1, 600),
    maxMessageBytes: int('max-message-bytes', 64 * 1024, 64 * 1024 * 1024),
    ...(str('hash-key-file') ? { hashKeyFile: str('hash-key-file') } : {}),
    allowedSecretTypes,
    healthPort: int('health-port', 0, 65535),
    metricsPort: int('metrics-port', 0, 65535),
    healthBindAddress: address('health-bind-address'),
    metricsBindAddress: address('metrics-bind-address'),
    logLevel: logLevel as Config['logLevel'],
    leaderElect: bool('leader-elect'),
    leaderElectionNamespace: str('leader-election-namespace') || env.POD_NAMESPACE || 'default',
    leaderElectionId: str('leader-election-id'),
    leaseDurationSeconds: int('lease-duration-seconds', 5, 600),
    podName: env.POD_NAME || `manager-${process.pid}`,
    podUid: env.POD_UID || '',
    shutdownGraceSeconds: int('shutdown-grace-seconds', 0, 600),
    apiTimeoutSeconds: int('api-timeout-seconds', 1, 600),
    restarts: {
      enabled: bool('restarts'),
      debounceSeconds: int('restart-debounce-seconds', 1, 3600),
      minIntervalSeconds: int('restart-min-interval-seconds', 0, 86_400),
    },
  };
}

/**
 * `--provider-token-audiences` entries over the default. An audience list may be empty (`vault=`):
 * that provider gets no serviceAccount.tokens (as upstream with no audiences), for providers that
 * authenticate otherwise.
 */
export function providerTokenAudiences(entries: readonly string[]): ReadonlyMap<string, readonly string[]> {
  const flag = 'provider-token-audiences';
  const given = new Map<string, string[]>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const provider = entry.slice(0, Math.max(eq, 0)).trim();
    if (eq < 0 || !PROVIDER_NAME.test(provider))
      throw new ConfigError(
        `--${flag} takes PROVIDER=AUDIENCE[,AUDIENCE…] with a provider name of 1-30 letters, digits, '-' or '_', got '${entry}'`,
        flag,
      );
    if (given.has(provider))
      throw new ConfigError(`--${flag} names provider '${provider}' twice: list its audiences in one entry`, flag);
    const audiences = entry
      .slice(eq + 1)
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    given.set(provider, [...new Set(audiences)]);
  }
  const merged = new Map([...DEFAULT_PROVIDER_TOKEN_AUDIENCES, ...given]);
  for (const [provider, audiences] of merged) if (!audiences.length) merged.delete(provider);
  return merged;
}
