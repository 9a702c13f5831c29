// The provider's command line, parsed once into a typed, validated Config.
import { errorMessage, flagUsage, parseArgsOptions, type FlagTable } from '@secret-store-sync/proto';
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
  /**
   * How long a completed read of an object's current version, or of its version list, answers the
   * same read by the same identity (0: only reads in flight are shared).
   */
  readShareSeconds: number;
  /**
   * The same for a read of a vault whose change events are being received, which end it when the
   * object changes (event-coverage.ts). `seconds` is what applies: --read-share-seconds-with-events
   * held to --cache-auth-window-seconds (an identity's access is trusted no longer anywhere in the
   * provider) and never below readShareSeconds; `asked` is the flag, so a change can be logged.
   */
  readShareWithEvents: { seconds: number; asked: number };
  /** Key Vault's events from a storage queue (change-source.ts); undefined: off, Mounts are only polled. */
  changeQueue: ChangeQueueConfig | undefined;
  /** Wait between polls of an empty change queue; a queue that had messages is polled again at once. */
  changeQueuePollSeconds: number;
}

/** The queue an Event Grid subscription delivers Key Vault's events to, and who reads it. */
export interface ChangeQueueConfig {
  /** https://<account>.queue.core.windows.net/<queue>. */
  url: string;
  identity: QueueIdentity;
}

/** The provider's own identity for the queue (it needs a queue data role only, no vault access). */
export type QueueIdentity =
  | { mode: 'workloadIdentity'; clientId: string; tenantId: string; tokenFile: string }
  | { mode: 'managedIdentity'; clientId?: string };

// Every flag, with what `--help` says of it (proto's flags.ts makes the parser's options and the
// help from this one table). Add a flag here and nowhere else.
export const FLAGS = {
  endpoint: {
    type: 'string',
    default: 'unix:///provider/azure.sock',
    help: "socket to serve the provider API on (mode 0600; a stale file is replaced, a live server's socket never taken).",
  },
  'healthz-port': {
    type: 'string',
    default: '8989',
    help: "port of the liveness endpoint: 200 while the provider's last self-check over its socket passed; 0 turns it off.",
  },
  'healthz-path': { type: 'string', default: '/healthz', help: 'path of the liveness endpoint.' },
  'metrics-port': { type: 'string', default: '8898', help: 'port of /metrics (Prometheus); 0 turns it off.' },
  'healthz-check-interval-seconds': {
    type: 'string',
    default: '10',
    help: 'how often the self-check runs (1 to 3600); the liveness endpoint answers from the last result.',
  },
  'http-bind-address': {
    type: 'string',
    default: '0.0.0.0',
    help: 'IP address the liveness and metrics listeners bind to, unless their own flags say otherwise (0.0.0.0 or :: for all).',
  },
  // Each defaults to --http-bind-address: health can stay on loopback (host network) while
  // metrics listen where Prometheus reaches them.
  'healthz-bind-address': {
    type: 'string',
    default: '',
    help: 'IP address of the liveness listener; default: --http-bind-address.',
  },
  'metrics-bind-address': {
    type: 'string',
    default: '',
    help: 'IP address of the metrics listener; default: --http-bind-address.',
  },
  'log-level': { type: 'string', default: 'info', help: 'error, warn, info or debug; JSON lines on stdout.' },
  'cloud-name': {
    type: 'string',
    default: 'AzurePublicCloud',
    help: `the cloud of a class that names none: ${CLOUD_NAMES.join(', ')}.`,
  },
  'construct-pem-chain': {
    type: 'string',
    default: 'true',
    help: "true: order a certificate's chain leaf, intermediates, root; false: as Key Vault holds it.",
  },
  'write-cert-and-key-in-separate-files': {
    type: 'string',
    default: 'false',
    help: 'true: also return <file>.crt and <file>.key for certificate-backed secrets.',
  },
  'vault-requests-per-second': {
    type: 'string',
    default: '250',
    help: "per-vault token bucket's rate (1 to 400), below Key Vault's 4000 reads per 10 s.",
  },
  'vault-burst': { type: 'string', default: '500', help: "per-vault token bucket's size (1 to 4000)." },
  'vault-max-concurrency': {
    type: 'string',
    default: '16',
    help: 'Key Vault requests in flight per vault (1 to 256).',
  },
  'vault-max-retries': {
    type: 'string',
    default: '3',
    help: 'retries of a throttled or failed Key Vault request (0 to 10), honouring Retry-After.',
  },
  'vault-request-timeout-seconds': {
    type: 'string',
    default: '20',
    help: "deadline of one Key Vault read, retries included; keep it below the manager's --provider-timeout-seconds.",
  },
  'version-cache-ttl-seconds': {
    type: 'string',
    default: '900',
    help: 'how long values read by explicit version are cached, per identity; 0 turns the cache off.',
  },
  'version-cache-max-bytes': {
    type: 'string',
    default: String(64 * 1024 * 1024),
    help: 'size bound of that cache; 0 turns it off.',
  },
  'max-mount-bytes': {
    type: 'string',
    default: String(1024 * 1024),
    help: 'a Mount whose files add up to more fails with RESOURCE_EXHAUSTED (a Secret holds 1 MiB).',
  },
  'shutdown-grace-seconds': {
    type: 'string',
    default: '20',
    help: 'on SIGTERM, how long in-flight Mounts may take before they are cancelled.',
  },
  'allow-node-identity': {
    type: 'string',
    default: 'false',
    help: "true: the node's managed identities may be used, by the namespaces --node-identity-namespaces lists (required then).",
  },
  'node-identity-namespaces': {
    type: 'string',
    default: '',
    help: "comma-separated grants of the node's identities: ns or ns=default (the default identity), ns=<client id> (that user-assigned identity), ns=* (every identity on the node).",
  },
  'allow-service-principal': {
    type: 'string',
    default: 'false',
    help: "true: accept a service principal from a Mount's nodePublishSecretRef (the CSI driver's; the manager never sends one).",
  },
  'cloud-env-dir': {
    type: 'string',
    default: '',
    help: 'absolute folder of AzureStackCloud environment files; empty: AzureStackCloud is refused.',
  },
  'max-objects-per-mount': {
    type: 'string',
    default: '256',
    help: 'most objects one Mount may list, refused before any network call.',
  },
  'max-reads-per-mount': {
    type: 'string',
    default: '1000',
    help: 'most Key Vault reads one Mount may cost (a history of N costs N + 1), refused before any network call.',
  },
  'mount-read-concurrency': { type: 'string', default: '8', help: 'reads of one Mount in flight at once (1 to 64).' },
  'max-identities': {
    type: 'string',
    default: '5000',
    help: 'most identities with credentials and Key Vault clients kept, the least recently used evicted.',
  },
  'max-vaults': {
    type: 'string',
    default: '1000',
    help: 'most vaults with budgets and metric labels, the least recently answered evicted (others labelled other).',
  },
  'cache-auth-window-seconds': {
    type: 'string',
    default: '60',
    help: 'a cached version is served only if Key Vault accepted the identity this recently; otherwise it is read again.',
  },
  'read-share-seconds': {
    type: 'string',
    default: '2',
    help: "how long a completed read of an object's current version or version list answers the same read by the same identity (0 to 60; 0: only reads in flight are shared); a change event ends it at once.",
  },
  'read-share-seconds-with-events': {
    type: 'string',
    default: '60',
    help: 'the same for a first sync (a Mount holding no versions) of a vault whose change events are being received (--change-queue-url), which end it when the object changes (0 to 300); at most --cache-auth-window-seconds, at least --read-share-seconds.',
  },
  'change-queue-url': {
    type: 'string',
    default: '',
    help: "https://<account>.queue.core.windows.net/<queue>: the storage queue an Event Grid subscription delivers Key Vault's events to; empty: no events, Mounts are polled only.",
  },
  'change-queue-identity': {
    type: 'string',
    default: 'workload-identity',
    help: "who reads the queue: workload-identity (this container's ServiceAccount token, federated) or managed-identity (the node's); it needs a queue data role, no vault access.",
  },
  'change-queue-client-id': {
    type: 'string',
    default: '',
    help: 'client ID of that identity; default $AZURE_CLIENT_ID (workload identity); for managed-identity empty means the default one.',
  },
  'change-queue-tenant-id': {
    type: 'string',
    default: '',
    help: 'its tenant (workload identity); default $AZURE_TENANT_ID.',
  },
  'change-queue-token-file': {
    type: 'string',
    default: '',
    help: 'the projected ServiceAccount token (audience api://AzureADTokenExchange) for workload identity; default $AZURE_FEDERATED_TOKEN_FILE.',
  },
  'change-queue-poll-seconds': {
    type: 'string',
    default: '1',
    help: 'wait between polls of an empty queue (1 to 60); a queue that had messages is polled again at once.',
  },
  version: { type: 'boolean', default: false, help: 'print the version and exit.' },
  help: { type: 'boolean', default: false, help: 'print this text and exit.' },
} as const satisfies FlagTable;

export class ConfigError extends Error {}

export function usage(): string {
  return flagUsage('Usage: provider-azure [flags]', FLAGS);
}

/**
 * `env`: the variables the Azure workload identity webhook injects (AZURE_CLIENT_ID,
 * AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE), defaults of the queue identity's flags.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): Config | 'version' | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: parseArgsOptions(FLAGS), strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${errorMessage(e)}\n${usage()}`);
  }
  if (values.version) return 'version';
  if (values.help) return 'help';
  const str = (k: keyof typeof FLAGS & string) => String(values[k]);
  const int = (k: keyof typeof FLAGS, min: number, max: number) => {
    const n = Number(str(k));
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(`--${k} must be a whole number from ${min} to ${max}, got '${str(k)}'`);
    return n;
  };
  const bool = (k: keyof typeof FLAGS) => {
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
  const address = (k: keyof typeof FLAGS) => {
    const flag = str(k) ? k : 'http-bind-address';
    if (!isIP(str(flag)))
      throw new ConfigError(`--${flag} must be an IP address (0.0.0.0 or :: for all), got '${str(flag)}'`);
    return str(flag);
  };
  const cloudEnvDir = str('cloud-env-dir');
  if (cloudEnvDir && !cloudEnvDir.startsWith('/'))
    throw new ConfigError(`--cloud-env-dir must be an absolute path, got '${cloudEnvDir}'`);
  const cacheAuthWindowSeconds = int('cache-auth-window-seconds', 0, 3600);
  const readShareSeconds = int('read-share-seconds', 0, 60);
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
    cacheAuthWindowSeconds,
    readShareSeconds,
    readShareWithEvents: readShareWithEvents({
      asked: int('read-share-seconds-with-events', 0, 300),
      authWindow: cacheAuthWindowSeconds,
      readShare: readShareSeconds,
    }),
    changeQueue: changeQueue(str, env),
    changeQueuePollSeconds: int('change-queue-poll-seconds', 1, 60),
  };
}

/** The window with events as it applies (Config.readShareWithEvents). */
function readShareWithEvents(o: {
  asked: number;
  authWindow: number;
  readShare: number;
}): Config['readShareWithEvents'] {
  return { seconds: Math.max(o.readShare, Math.min(o.asked, o.authWindow)), asked: o.asked };
}

const QUEUE_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The change queue's flags, checked together; undefined when --change-queue-url is empty. */
function changeQueue(str: (k: keyof typeof FLAGS) => string, env: NodeJS.ProcessEnv): ChangeQueueConfig | undefined {
  const raw = str('change-queue-url');
  if (!raw) return undefined;
  const url = queueUrl(raw);
  const clientId = str('change-queue-client-id') || env.AZURE_CLIENT_ID || '';
  if (clientId && !GUID.test(clientId))
    throw new ConfigError(`--change-queue-client-id must be a client ID (a GUID), got '${clientId.slice(0, 80)}'`);
  const mode = str('change-queue-identity');
  if (mode === 'managed-identity')
    return { url: url.href, identity: { mode: 'managedIdentity', ...(clientId ? { clientId } : {}) } };
  if (mode !== 'workload-identity')
    throw new ConfigError(`--change-queue-identity must be workload-identity or managed-identity, got '${mode}'`);
  const tenantId = str('change-queue-tenant-id') || env.AZURE_TENANT_ID || '';
  const tokenFile = str('change-queue-token-file') || env.AZURE_FEDERATED_TOKEN_FILE || '';
  if (!clientId || !GUID.test(tenantId) || !tokenFile.startsWith('/'))
    throw new ConfigError(
      `--change-queue-identity=workload-identity needs a client ID (--change-queue-client-id or AZURE_CLIENT_ID), a tenant GUID (--change-queue-tenant-id or AZURE_TENANT_ID) and the absolute path of a projected ServiceAccount token (--change-queue-token-file or AZURE_FEDERATED_TOKEN_FILE); got client ID '${clientId}', tenant '${tenantId.slice(0, 80)}', token file '${tokenFile.slice(0, 200)}'`,
    );
  return { url: url.href, identity: { mode: 'workloadIdentity', clientId, tenantId, tokenFile } };
}

/** An https URL naming one queue, with no query: a SAS in a flag would be a credential in the pod spec and in logs. */
function queueUrl(raw: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  const queue = url?.pathname.slice(1) ?? '';
  // The account's DNS name on port 443: the Storage SDK reads an IP address, localhost or an
  // explicit port as an emulator's path-style URL (/<account>/<queue>).
  const host = url?.hostname ?? '';
  const named = !isIP(host.replace(/^\[|\]$/g, '')) && host !== 'localhost' && !url?.port;
  if (
    !url ||
    url.protocol !== 'https:' ||
    url.search ||
    url.username ||
    url.password ||
    !QUEUE_NAME.test(queue) ||
    !named
  )
    throw new ConfigError(
      `--change-queue-url must be https://<account>.queue.core.windows.net/<queue> (the account's DNS name, a queue name, no query: the provider authenticates with its identity), got '${raw.slice(0, 200)}'`,
    );
  return url;
}
