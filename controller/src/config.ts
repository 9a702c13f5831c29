// The manager's command line, parsed once into a typed Config.
import { errorMessage } from '@secret-store-sync/proto';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';

export interface Config {
  kubeconfig?: string;
  /** Watch one namespace only ("" = all). */
  namespace: string;
  /** Handle SecretSyncs whose spec.secretSyncControllerName equals this. */
  controllerName: string;
  providerDir: string;
  tokenAudiences: string[];
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

const OPTIONS = {
  kubeconfig: { type: 'string' },
  namespace: { type: 'string', default: '' },
  'controller-name': { type: 'string', default: '' },
  'provider-dir': { type: 'string', default: '/provider' },
  'token-audiences': { type: 'string', default: 'api://AzureADTokenExchange' },
  'token-expiration-seconds': { type: 'string', default: '600' },
  'rotation-poll-interval-seconds': { type: 'string', default: '3600' },
  'rotation-share-seconds': { type: 'string', default: '' },
  'expiry-warning-days': { type: 'string', default: '30' },
  'expiry-check-min-interval-seconds': { type: 'string', default: '300' },
  'max-expiry-series-per-secretsync': { type: 'string', default: '20' },
  'max-expiry-series': { type: 'string', default: '10000' },
  workers: { type: 'string', default: '10' },
  // Default: half the workers (rounded up), so one namespace never holds them all against others.
  'workers-per-namespace': { type: 'string', default: '' },
  'provider-timeout-seconds': { type: 'string', default: '30' },
  'max-message-bytes': { type: 'string', default: String(4 * 1024 * 1024) },
  'hash-key-file': { type: 'string' },
  'allowed-secret-types': { type: 'string', default: DEFAULT_ALLOWED_TYPES.join(',') },
  'health-port': { type: 'string', default: '8081' },
  'metrics-port': { type: 'string', default: '8085' },
  'http-bind-address': { type: 'string', default: '0.0.0.0' },
  // Each defaults to --http-bind-address: health can stay on loopback (host network) while
  // metrics listen where Prometheus reaches them.
  'health-bind-address': { type: 'string', default: '' },
  'metrics-bind-address': { type: 'string', default: '' },
  'log-level': { type: 'string', default: 'info' },
  'leader-elect': { type: 'string', default: 'false' },
  'leader-election-namespace': { type: 'string', default: '' },
  'leader-election-id': { type: 'string', default: 'secret-store-sync-manager' },
  'lease-duration-seconds': { type: 'string', default: '15' },
  'shutdown-grace-seconds': { type: 'string', default: '20' },
  'api-timeout-seconds': { type: 'string', default: '30' },
  version: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
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
  return [
    'Usage: secret-store-sync-manager [flags]',
    ...Object.entries(OPTIONS).map(
      ([k, v]) => `  --${k}${'default' in v && v.type === 'string' ? ` (default ${v.default || '""'})` : ''}`,
    ),
  ].join('\n');
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config | 'version' | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${errorMessage(e)}\n${usage()}`);
  }
  if (values.version) return 'version';
  if (values.help) return 'help';
  const str = (k: keyof typeof OPTIONS) => (values[k] === undefined ? '' : String(values[k]));
  const int = (k: keyof typeof OPTIONS, min: number, max: number) => {
    const n = Number(str(k));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`--${k} must be a whole number from ${min} to ${max}, got '${str(k)}'`);
    return n;
  };
  const list = (k: keyof typeof OPTIONS) =>
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
  const address = (k: keyof typeof OPTIONS) => {
    const flag = str(k) ? k : 'http-bind-address';
    if (!isIP(str(flag)))
      throw new ConfigError(`--${flag} must be an IP address (0.0.0.0 or :: for all), got '${str(flag)}'`, flag);
    return str(flag);
  };
  const leader = str('leader-elect').toLowerCase();
  if (leader !== 'true' && leader !== 'false')
    throw new ConfigError(`--leader-elect must be true or false, got '${str('leader-elect')}'`);
  // Empty: no token is minted and the provider gets no serviceAccount.tokens (as upstream), for
  // providers that authenticate otherwise.
  const audiences = list('token-audiences');
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
    tokenAudiences: audiences,
    tokenExpirationSeconds: int('token-expiration-seconds', 600, 86_400),
    rotationIntervalSeconds,
    rotationShareSeconds,
    expiryWarningSeconds: int('expiry-warning-days', 0, 3650) * 86_400,
    expiryCheckMinIntervalSeconds: int('expiry-check-min-interval-seconds', 1, 86_400),
    maxExpirySeriesPerSecretSync: int('max-expiry-series-per-secretsync', 0, 10_000),
    maxExpirySeries: int('max-expiry-series', 0, 1_000_000),
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
    leaderElect: leader === 'true',
    leaderElectionNamespace: str('leader-election-namespace') || env.POD_NAMESPACE || 'default',
    leaderElectionId: str('leader-election-id'),
    leaseDurationSeconds: int('lease-duration-seconds', 5, 600),
    podName: env.POD_NAME || `manager-${process.pid}`,
    podUid: env.POD_UID || '',
    shutdownGraceSeconds: int('shutdown-grace-seconds', 0, 600),
    apiTimeoutSeconds: int('api-timeout-seconds', 1, 600),
  };
}
