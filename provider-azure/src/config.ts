// The provider's command line, parsed once into a typed, validated Config.
import { errorMessage } from '@secret-store-sync/proto';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { CLOUD_NAMES, type CloudName } from './cloud.js';
import { parseNodeIdentities, type NodeIdentityGrants } from './node-identity.js';

export interface Config {
  endpoint: string;
  /** 0 turns the listener off. */
  healthzPort: number;
  healthzPath: string;
  /** How often the provider checks its own gRPC health over its socket; /healthz answers from the last check. */
  healthzCheckIntervalSeconds: number;
  metricsPort: number;
  /** Where /healthz listens, and where /metrics does (IP literals). */
  healthzBindAddress: string;
  metricsBindAddress: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  defaultCloud: CloudName;
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
  /** Per-vault request budget, kept below Key Vault's 4 000 GET/LIST per 10 s. */
  vaultRequestsPerSecond: number;
  vaultBurst: number;
  vaultMaxConcurrency: number;
  vaultMaxRetries: number;
  /** Deadline of one Key Vault read, retries included (below the manager's provider deadline). */
  vaultRequestTimeoutSeconds: number;
  /** Values read by explicit version are immutable; keep them this long (0 disables the cache). */
  versionCacheTtlSeconds: number;
  versionCacheMaxBytes: number;
  /** A Mount whose files add up to more than this fails (a Kubernetes Secret holds 1 MiB). */
  maxMountBytes: number;
  shutdownGraceSeconds: number;
  /**
   * Identities that are not the caller's own. The node's managed identity is shared by every
   * namespace, so it is off unless an operator turns it on, and then only for the listed namespaces.
   */
  allowNodeIdentity: boolean;
  /** Namespace → the node identities it may use (--node-identity-namespaces). */
  nodeIdentities: NodeIdentityGrants;
  /** nodePublishSecretRef service principals (the manager never sends one; the CSI driver may). */
  allowServicePrincipal: boolean;
  /** Where AzureStackCloud environment files may be read from ("" = nowhere: AzureStackCloud refused). */
  cloudEnvDir: string;
  /** Per-Mount limits, checked before any network call, and the Mount's own read concurrency. */
  maxObjectsPerMount: number;
  maxReadsPerMount: number;
  mountReadConcurrency: number;
  /** Bounds of the per-identity and per-vault state (credentials, SDK clients, budgets, metric labels). */
  maxIdentities: number;
  maxVaults: number;
  /** A value cached by version is served only if Key Vault accepted this identity this recently. */
  cacheAuthWindowSeconds: number;
}

const OPTIONS = {
  endpoint: { type: 'string', default: 'unix:///provider/azure.sock' },
  'healthz-port': { type: 'string', default: '8989' },
  'healthz-path': { type: 'string', default: '/healthz' },
  'metrics-port': { type: 'string', default: '8898' },
  'healthz-check-interval-seconds': { type: 'string', default: '10' },
  'http-bind-address': { type: 'string', default: '0.0.0.0' },
  // Each defaults to --http-bind-address: health can stay on loopback (host network) while
  // metrics listen where Prometheus reaches them.
  'healthz-bind-address': { type: 'string', default: '' },
  'metrics-bind-address': { type: 'string', default: '' },
  'log-level': { type: 'string', default: 'info' },
  'cloud-name': { type: 'string', default: 'AzurePublicCloud' },
  'construct-pem-chain': { type: 'string', default: 'true' },
  'write-cert-and-key-in-separate-files': { type: 'string', default: 'false' },
  'vault-requests-per-second': { type: 'string', default: '250' },
  'vault-burst': { type: 'string', default: '500' },
  'vault-max-concurrency': { type: 'string', default: '16' },
  'vault-max-retries': { type: 'string', default: '3' },
  'vault-request-timeout-seconds': { type: 'string', default: '20' },
  'version-cache-ttl-seconds': { type: 'string', default: '900' },
  'version-cache-max-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
  'max-mount-bytes': { type: 'string', default: String(1024 * 1024) },
  'shutdown-grace-seconds': { type: 'string', default: '20' },
  'allow-node-identity': { type: 'string', default: 'false' },
  'node-identity-namespaces': { type: 'string', default: '' },
  'allow-service-principal': { type: 'string', default: 'false' },
  'cloud-env-dir': { type: 'string', default: '' },
  'max-objects-per-mount': { type: 'string', default: '256' },
  'max-reads-per-mount': { type: 'string', default: '1000' },
  'mount-read-concurrency': { type: 'string', default: '8' },
  'max-identities': { type: 'string', default: '5000' },
  'max-vaults': { type: 'string', default: '1000' },
  'cache-auth-window-seconds': { type: 'string', default: '60' },
  version: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

export class ConfigError extends Error {}

export function usage(): string {
  return [
    'Usage: provider-azure [flags]',
    ...Object.entries(OPTIONS).map(
      ([k, v]) => `  --${k}${'default' in v && v.type === 'string' ? ` (default ${v.default})` : ''}`,
    ),
  ].join('\n');
}

export function parseConfig(argv: string[]): Config | 'version' | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${errorMessage(e)}\n${usage()}`);
  }
  if (values.version) return 'version';
  if (values.help) return 'help';
  const str = (k: keyof typeof OPTIONS) => String(values[k]);
  const int = (k: keyof typeof OPTIONS, min: number, max: number) => {
    const n = Number(str(k));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`--${k} must be a whole number from ${min} to ${max}, got '${str(k)}'`);
    return n;
  };
  const bool = (k: keyof typeof OPTIONS) => {
    const v = str(k).toLowerCase();
    if (v !== 'true' && v !== 'false') throw new ConfigError(`--${k} must be true or false, got '${str(k)}'`);
    return v === 'true';
  };
  const logLevel = str('log-level');
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel))
    throw new ConfigError(`--log-level must be error, warn, info or debug, got '${logLevel}'`);
  const cloud = CLOUD_NAMES.find((c) => c.toLowerCase() === str('cloud-name').toLowerCase());
  if (!cloud) throw new ConfigError(`--cloud-name '${str('cloud-name')}' is not one of ${CLOUD_NAMES.join(', ')}`);
  if (!/^unix:\/\/.+/i.test(str('endpoint')))
    throw new ConfigError(`--endpoint must be unix:///path/to.sock, got '${str('endpoint')}'`);
  const allowNodeIdentity = bool('allow-node-identity');
  const nodeIdentities = parseNodeIdentities(str('node-identity-namespaces'));
  if ('error' in nodeIdentities) throw new ConfigError(nodeIdentities.error);
  if (allowNodeIdentity && nodeIdentities.grants.size === 0) {
    throw new ConfigError(
      "--allow-node-identity=true needs --node-identity-namespaces: the namespaces whose SecretProviderClasses may use the node's managed identity (it is shared by all of them)",
    );
  }
  const address = (k: keyof typeof OPTIONS) => {
    const flag = str(k) ? k : 'http-bind-address';
    if (!isIP(str(flag)))
      throw new ConfigError(`--${flag} must be an IP address (0.0.0.0 or :: for all), got '${str(flag)}'`);
    return str(flag);
  };
  const cloudEnvDir = str('cloud-env-dir');
  if (cloudEnvDir && !cloudEnvDir.startsWith('/'))
    throw new ConfigError(`--cloud-env-dir must be an absolute path, got '${cloudEnvDir}'`);
  return {
    endpoint: str('endpoint'),
    healthzPort: int('healthz-port', 0, 65535),
    healthzPath: str('healthz-path'),
    healthzCheckIntervalSeconds: int('healthz-check-interval-seconds', 1, 3600),
    metricsPort: int('metrics-port', 0, 65535),
    healthzBindAddress: address('healthz-bind-address'),
    metricsBindAddress: address('metrics-bind-address'),
    logLevel: logLevel as Config['logLevel'],
    defaultCloud: cloud,
    constructPemChain: bool('construct-pem-chain'),
    writeCertAndKeyInSeparateFiles: bool('write-cert-and-key-in-separate-files'),
    vaultRequestsPerSecond: int('vault-requests-per-second', 1, 400),
    vaultBurst: int('vault-burst', 1, 4000),
    vaultMaxConcurrency: int('vault-max-concurrency', 1, 256),
    vaultMaxRetries: int('vault-max-retries', 0, 10),
    vaultRequestTimeoutSeconds: int('vault-request-timeout-seconds', 1, 600),
    versionCacheTtlSeconds: int('version-cache-ttl-seconds', 0, 86_400),
    versionCacheMaxBytes: int('version-cache-max-bytes', 0, 2 ** 31),
    maxMountBytes: int('max-mount-bytes', 1024, 64 * 1024 * 1024),
    shutdownGraceSeconds: int('shutdown-grace-seconds', 0, 600),
    allowNodeIdentity,
    nodeIdentities: nodeIdentities.grants,
    allowServicePrincipal: bool('allow-service-principal'),
    cloudEnvDir,
    maxObjectsPerMount: int('max-objects-per-mount', 1, 10_000),
    maxReadsPerMount: int('max-reads-per-mount', 1, 100_000),
    mountReadConcurrency: int('mount-read-concurrency', 1, 64),
    maxIdentities: int('max-identities', 1, 1_000_000),
    maxVaults: int('max-vaults', 1, 100_000),
    cacheAuthWindowSeconds: int('cache-auth-window-seconds', 0, 3600),
  };
}
