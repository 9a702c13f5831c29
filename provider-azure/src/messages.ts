// Every text the provider answers a Mount with, in one place, each with its gRPC code and reason
// (reasons.ts says what each reason means; README's provider errors table lists them). Errors are
// made from these only: `providerError` is the one place a ProviderError is made, and ContentError
// takes a catalog Text (a branded string), so the compiler keeps new messages here;
// test/messages.unit.test.ts checks that nothing outside casts or constructs its way around that.
// No text may hold a secret value, a token or a client secret.
import { ProviderError, type ChangeState, type ErrorContext, type ProviderErrorCode } from '@secret-store-sync/proto';
import type { QueueFailure } from './change-queue.js';
import { quote } from './log.js';
import type { REASONS } from './reasons.js';

declare const catalogued: unique symbol;
/** A text from this catalog. */
export type Text = string & { readonly [catalogued]: true };
/** A failure from this catalog: its gRPC code, its text and the reason for `x-provider-reason`. */
export interface Failure {
  readonly code: ProviderErrorCode;
  readonly text: Text;
  readonly reason?: string;
}
type Reason = keyof typeof REASONS;

const text = (s: string) => s as Text;
const invalid = (s: string): Failure => ({ code: 'InvalidArgument', text: text(s) });
/** A failure with one of the catalog's reasons, whose code the compiler checks against reasons.ts. */
const failure = <R extends Reason>(reason: R, code: (typeof REASONS)[R]['code'], s: string): Failure => ({
  code,
  reason,
  text: text(s),
});

/** The one place a ProviderError is made. */
export function providerError(f: Failure, options?: { cause?: unknown; context?: ErrorContext }): ProviderError {
  return new ProviderError(f.code, f.text, f.reason, options);
}

const NODE_DEFAULT_IDENTITY = "the node's default identity (no userAssignedIdentityID)";

/** The SecretProviderClass's parameters (params.ts, cloud.ts, node-identity.ts). */
export const PARAMETERS = {
  notBoolean: (o: { key: string; value: string }) => invalid(`${o.key} must be true or false, got ${quote(o.value)}`),
  caseTypo: (o: { key: string; near: string }) =>
    invalid(`unknown parameter '${o.key}': did you mean '${o.near}'? (parameter names are case-sensitive)`),
  noVaultName: () => invalid('keyvaultName is not set'),
  badVaultName: (o: { name: string }) =>
    invalid(
      `keyvaultName ${quote(o.name)} is not a valid vault name: 3-24 letters, digits and single hyphens, starting with a letter and not ending with a hyphen`,
    ),
  tooManyReads: (o: { objects: number; reads: number; limit: number }) =>
    invalid(
      `objects: the ${o.objects} objects (with their objectVersionHistory) need ${o.reads} Key Vault reads, over this provider's limit of ${o.limit} per Mount; split them over several SecretProviderClasses or ask for fewer versions`,
    ),
  noTenant: () => invalid('tenantID is not set'),
  tenantIsDomain: (o: { tenantId: string }) =>
    invalid(
      `tenantID ${quote(o.tenantId)} is a domain; set the tenant's GUID instead (az account show --query tenantId -o tsv): Key Vault names the tenant by GUID and the Azure SDK accepts only that exact tenant`,
    ),
  notATenant: (o: { tenantId: string }) =>
    invalid(`tenantID ${quote(o.tenantId)} is not a tenant id (a GUID such as 00000000-0000-0000-0000-000000000000)`),
  severalIdentities: (o: { modes: string[] }) =>
    invalid(
      `only one identity may be configured, found: ${o.modes.join(', ')} (the node's managed identity takes its id from userAssignedIdentityID, not clientID)`,
    ),
  podIdentity: () =>
    invalid(
      'usePodIdentity: aad-pod-identity is retired and not supported; use workload identity (set clientID and federate the ServiceAccount)',
    ),
  tokenProxy: () =>
    invalid('useAzureTokenProxy (AKS identity binding) is not supported; use workload identity (set clientID)'),
  noClientId: () => invalid('the nodePublishSecretRef secret has clientsecret but no clientid'),
  noClientSecret: () => invalid('the nodePublishSecretRef secret has clientid but no clientsecret'),
  noIdentity: () =>
    invalid(
      'no identity is configured: set clientID (workload identity), useVMManagedIdentity, or a nodePublishSecretRef with clientid and clientsecret',
    ),
  nodeIdentityDisabled: () =>
    invalid(
      "useVMManagedIdentity: the node's managed identity is disabled in this provider, because every namespace would share it; use workload identity (clientID), or ask an operator to enable it for this namespace (provider flags --allow-node-identity=true --node-identity-namespaces=<namespaces>; chart values provider.allowNodeIdentity, provider.nodeIdentityNamespaces, provider.nodeIdentityBindings)",
    ),
  nodeIdentityNotListed: (o: { namespace: string }) =>
    invalid(
      `useVMManagedIdentity: namespace '${o.namespace}' may not use the node's managed identity; an operator lists the namespaces that may in --node-identity-namespaces (chart values provider.nodeIdentityNamespaces, provider.nodeIdentityBindings)`,
    ),
  /** `clientId` undefined: the node's default identity. */
  nodeIdentityNotBound: (o: {
    namespace: string;
    clientId?: string;
    allowed: { defaultIdentity: boolean; clientIds: string[] };
  }) =>
    invalid(
      `useVMManagedIdentity: namespace '${o.namespace}' may not use ${o.clientId === undefined ? NODE_DEFAULT_IDENTITY : `the identity '${o.clientId}' (userAssignedIdentityID)`}: it may use ${[...(o.allowed.defaultIdentity ? [NODE_DEFAULT_IDENTITY] : []), ...o.allowed.clientIds.map((id) => `'${id}'`)].join(', ')}. Each namespace uses only the node identities an operator binds to it (--node-identity-namespaces=${o.namespace}=<client id>; chart value provider.nodeIdentityBindings)`,
    ),
  servicePrincipalDisabled: () =>
    invalid(
      'nodePublishSecretRef: service-principal credentials are disabled in this provider; use workload identity (clientID), or ask an operator to enable them (provider flag --allow-service-principal=true; chart value provider.allowServicePrincipal)',
    ),
  // No parser message: it quotes the input around the fault, which here is a token.
  tokensNotJson: (o: { key: string }) => invalid(`${o.key} is not valid JSON`),

  unknownCloud: (o: { cloudName: string; known: readonly string[] }) =>
    invalid(`cloudName ${quote(o.cloudName)} is not one of ${o.known.join(', ')}`),
  stackCloudDisabled: () =>
    invalid(
      'cloudName AzureStackCloud is not enabled in this provider: an operator must provide the environment files in a folder (--cloud-env-dir; chart value provider.cloudEnvConfigMap)',
    ),
  noCloudEnvFile: (o: { dir: string }) =>
    invalid(
      `cloudName AzureStackCloud needs cloudEnvFileName: the name of a JSON file with keyVaultDNSSuffix and activeDirectoryEndpoint in ${o.dir}`,
    ),
  cloudEnvFileOutside: (o: { file: string; dir: string }) =>
    invalid(
      `cloudEnvFileName ${quote(o.file)} is not a file in ${o.dir}, the folder the operator set for cloud environment files`,
    ),
  // `shown` names the file as the class did: cloudEnvFileName '<name>'. Its content is never quoted.
  cloudEnvLeadsOutside: (o: { shown: string; dir: string }) => invalid(`${o.shown} leads outside ${o.dir}`),
  cloudEnvNotAFile: (o: { shown: string }) => invalid(`${o.shown} is not a regular file`),
  cloudEnvTooLarge: (o: { shown: string; limit: number }) => invalid(`${o.shown} is larger than ${o.limit} bytes`),
  cloudEnvUnreadable: (o: { shown: string; code: string | number }) =>
    invalid(`${o.shown} could not be read (${o.code})`),
  cloudEnvNotJson: (o: { shown: string }) => invalid(`${o.shown} is not valid JSON`),
  cloudEnvFields: (o: { shown: string }) =>
    invalid(`${o.shown} must set keyVaultDNSSuffix and activeDirectoryEndpoint (strings)`),
};

/** The service-account token the caller passed for workload identity (params.ts). */
export const TOKENS = {
  none: (o: { key: string; audience: string }) => ({
    code: 'Unauthenticated' as const,
    text: text(
      `no service-account token was passed (${o.key} is empty); the caller must request one for audience ${o.audience}`,
    ),
  }),
  noneForAudience: (o: { audience: string; passed: string[] }) => ({
    code: 'Unauthenticated' as const,
    text: text(
      `no service-account token for audience ${o.audience} among the passed tokens (${o.passed.join(', ') || 'none'})`,
    ),
  }),
  notJwt: (o: { audience: string }) => ({
    code: 'Unauthenticated' as const,
    text: text(`the service-account token for ${o.audience} is not a JWT`),
  }),
  expired: (o: { audience: string; at: Date }) =>
    failure(
      'TokenExpired',
      'Unauthenticated',
      `the service-account token for ${o.audience} expired at ${o.at.toISOString()}`,
    ),
};

/** The `objects` parameter (objects.ts); `where` names the entry, e.g. "objects[0] (db-password)". */
export const OBJECTS = {
  notSet: () => invalid('objects is not set: list the Key Vault objects under `array:`'),
  tooLong: (o: { length: number; limit: number; perObject: number }) =>
    invalid(
      `objects is ${o.length} characters long, over the ${o.limit} this provider parses (${o.perObject} per object it may list); split the objects over several SecretProviderClasses`,
    ),
  noArray: () =>
    invalid(
      'objects must be a YAML mapping with an `array:` list of object descriptions (see the SecretProviderClass example)',
    ),
  arrayNotList: () => invalid('objects: `array:` must be a list of YAML strings, one per object (write each as `- |`)'),
  emptyArray: () => invalid('objects: `array:` lists no objects'),
  tooMany: (o: { count: number; limit: number }) =>
    invalid(
      `objects: \`array:\` lists ${o.count} objects, over this provider's limit of ${o.limit} per Mount; split them over several SecretProviderClasses`,
    ),
  sameFile: (o: { index: number; name: string; file: string; previous: number }) =>
    invalid(
      `objects[${o.index}] (${o.name}) writes the file '${o.file}', as objects[${o.previous}] does: give one of them an objectAlias`,
    ),
  severalDocuments: (o: { where: string }) => invalid(`${o.where} holds more than one YAML document`),
  tooManyLines: (o: { where: string; limit: number }) => invalid(`${o.where} has more than ${o.limit} lines`),
  tooManyKeys: (o: { where: string; limit: number; perObject: number }) =>
    invalid(`${o.where} has more than ${o.limit} mapping keys; a class needs at most ${o.perObject} per object`),
  fieldIsList: (o: { where: string }) => invalid(`${o.where}: a field holds a list; each field takes a single value`),
  tooManyItems: (o: { where: string; limit: number }) =>
    invalid(
      `${o.where} has more than ${o.limit} list entries (\`- \`), more than the objects this provider takes per Mount`,
    ),
  multilineQuote: (o: { where: string }) =>
    invalid(`${o.where}: a quoted value spans lines; write each value on one line`),
  costlyShape: (o: { where: string; shape: string }) =>
    invalid(
      `${o.where} uses YAML ${o.shape}, which a SecretProviderClass never needs; write \`array:\` as a block list of \`- |\` entries, as in the example`,
    ),
  notYaml: (o: { where: string; detail: string }) => invalid(`${o.where} is not valid YAML: ${o.detail}`),
  notMapping: (o: { where: string }) => invalid(`${o.where} must be a mapping with objectName and objectType`),
  unknownField: (o: { where: string; field: string; near?: string; known: readonly string[] }) =>
    invalid(
      `${o.where}: unknown field ${quote(o.field)}${o.near ? ` (did you mean '${o.near}'?)` : `; known fields: ${o.known.join(', ')}`}`,
    ),
  notSingleValue: (o: { where: string; field: string; isList: boolean }) =>
    invalid(`${o.where}: ${o.field} must be a single value, not a ${o.isList ? 'list' : 'mapping'}`),
  noName: (o: { where: string }) => invalid(`${o.where}: objectName is required`),
  badName: (o: { where: string; name: string }) =>
    invalid(
      `${o.where}: objectName ${quote(o.name)} is not a Key Vault object name (1-127 letters, digits and hyphens)`,
    ),
  badType: (o: { where: string; type: string }) =>
    invalid(
      `${o.where}: objectType ${quote(o.type)} is not one of secret, key, cert${o.type ? '' : ' (it is required)'}`,
    ),
  badVersion: (o: { where: string; version: string }) =>
    invalid(`${o.where}: objectVersion ${quote(o.version)} is not a Key Vault version id`),
  historyNotNumber: (o: { where: string; text: string; max: number }) =>
    invalid(`${o.where}: objectVersionHistory must be a whole number from 1 to ${o.max}, got ${quote(o.text)}`),
  historyOutOfRange: (o: { where: string; text: string; max: number }) =>
    invalid(`${o.where}: objectVersionHistory must be from 1 to ${o.max}, got ${o.text}`),
  aliasTooLong: (o: { where: string; alias: string }) =>
    invalid(
      `${o.where}: objectAlias ${quote(o.alias)} is ${o.alias.length} characters long; a file name, and the Secret key it becomes, take at most 253`,
    ),
  aliasAbsolute: (o: { where: string; alias: string }) =>
    invalid(`${o.where}: objectAlias ${quote(o.alias)} must be a relative path`),
  aliasDotDot: (o: { where: string; alias: string }) =>
    invalid(`${o.where}: objectAlias ${quote(o.alias)} must not contain '..'`),
  aliasCharacters: (o: { where: string; alias: string }) =>
    invalid(
      `${o.where}: objectAlias ${quote(o.alias)} may hold letters, digits, '.', '_', '-' and single '/' between names`,
    ),
  badEncoding: (o: { where: string; encoding: string }) =>
    invalid(`${o.where}: objectEncoding ${quote(o.encoding)} is not one of utf-8, hex, base64`),
  encodingNotSecret: (o: { where: string }) => invalid(`${o.where}: objectEncoding applies to objectType secret only`),
  badFormat: (o: { where: string; format: string }) =>
    invalid(`${o.where}: objectFormat ${quote(o.format)} is not one of pem, pfx`),
  pfxNotSecret: (o: { where: string }) =>
    invalid(`${o.where}: objectFormat pfx applies to objectType secret (the certificate's backing secret) only`),
  badPermission: (o: { where: string; text: string }) =>
    invalid(`${o.where}: filePermission ${quote(o.text)} must be an octal file mode such as 0644`),
};

/** A value that cannot be converted as asked (content.ts): ContentError's texts. */
export const CONTENT = {
  rsaWithoutModulus: () => text('the RSA key has no modulus or exponent'),
  unsupportedCurve: (o: { curve: string }) =>
    text(`EC curve ${o.curve || '(none)'} is not supported; use P-256, P-384 or P-521`),
  noPublicKey: (o: { kty: string }) =>
    text(`key type ${o.kty || '(none)'} has no public key to export; only RSA and EC keys can be synced`),
  unreadablePkcs12: (o: { detail: string }) => text(`the certificate's PKCS#12 content could not be read: ${o.detail}`),
  pkcs12WithoutCertificate: () => text("the certificate's PKCS#12 content holds no certificate"),
  pemAsPfx: () =>
    text('objectFormat pfx: this certificate was imported as PEM, and Key Vault keeps it as PEM; use objectFormat pem'),
  unknownContentType: (o: { contentType?: string; pem: string; pfx: string }) =>
    text(`the certificate's secret has content type '${o.contentType ?? '(none)'}'; expected ${o.pem} or ${o.pfx}`),
  notBase64: () => text('objectEncoding base64: the secret value is not valid base64'),
  notHex: () => text('objectEncoding hex: the secret value is not valid hex'),
};

/**
 * What a 403 means, by Key Vault's inner error code (errors.ts) — its messages are for people and
 * change, and "disabled" appears in the network-rule message too ("Public network access is
 * disabled…"). Codes and messages from real responses: SecretDisabled (Azure/azure-sdk-for-js#24756),
 * ForbiddenByRbac (the RBAC denial naming the action), ForbiddenByConnection
 * (microsoft/multimodal-ai#171), ForbiddenByFirewall (microsoft/AzureTRE#3789), ForbiddenByPolicy
 * (vaults using access policies). A disabled version is the same failure whether Key Vault refused
 * it (secrets) or the provider did (keys, certificates).
 */
const DISABLED = 'the version is disabled in Key Vault; enable it or point objectVersion at an enabled one';
export const FORBIDDEN: Record<string, { code: 'FailedPrecondition' | 'PermissionDenied'; says: string }> = {
  SecretDisabled: { code: 'FailedPrecondition', says: DISABLED },
  KeyDisabled: { code: 'FailedPrecondition', says: DISABLED },
  CertificateDisabled: { code: 'FailedPrecondition', says: DISABLED },
  ForbiddenByRbac: {
    code: 'PermissionDenied',
    says: 'the identity has no role that allows this read (assign it "Key Vault Secrets User", or "Key Vault Reader" for keys and certificates, on the vault; new assignments can take minutes to apply)',
  },
  ForbiddenByPolicy: {
    code: 'PermissionDenied',
    says: 'the vault uses access policies and none lets this identity read it (add an access policy with get permission, or switch the vault to Azure RBAC)',
  },
  ForbiddenByConnection: {
    code: 'PermissionDenied',
    says: "the vault's public network access is disabled and this cluster does not reach it through a private endpoint (add a private endpoint in the cluster's network, or allow the cluster's network)",
  },
  ForbiddenByFirewall: {
    code: 'PermissionDenied',
    says: "the vault's firewall does not allow this cluster's address (add the cluster's outbound IP or subnet to the vault's network rules)",
  },
};

/**
 * Key Vault's and Entra's answers (errors.ts, vault.ts, mount.ts). `message` is the SDK's first
 * line, redacted; `where` names the vault and object: "vault 'kv': secret 'db'".
 */
export const AZURE = {
  /** Any failure, told for the vault and object it happened at. */
  at: (o: { where: string; failure: Failure }): Failure => ({
    ...o.failure,
    text: text(`${o.where}: ${o.failure.text}`),
  }),
  /** Told already for another vault or object (raised below the SDK): named for this one too. */
  alsoAt: (o: { where: string; error: ProviderError }): Failure => ({
    code: o.error.code,
    text: text(`${o.where}: ${o.error.message}`),
    ...(o.error.reason ? { reason: o.error.reason } : {}),
  }),
  disabled: (o: { reason: 'KeyDisabled' | 'CertificateDisabled' }) => failure(o.reason, 'FailedPrecondition', DISABLED),
  wrongTenant: (o: { tenantId: string; vault: string; vaultTenant: string }) =>
    failure(
      'WrongTenant',
      'Unauthenticated',
      `tenantID '${o.tenantId}' is not the tenant of vault '${o.vault}' (${o.vaultTenant}, as its authentication challenge says): set tenantID to the vault's tenant, or check keyvaultName`,
    ),
  entraUnavailable: (o: { message: string; reason: string }): Failure => ({
    code: 'Unavailable',
    reason: o.reason,
    text: text(
      `Entra ID could not issue a token just now, which is not a refusal of the identity (${o.message}); the Azure SDK does not ask Entra again for this identity until 60 s after such an answer`,
    ),
  }),
  entraUnreachable: (o: { message: string; seconds: number }) =>
    failure(
      'EntraUnreachable',
      'Unavailable',
      `Entra ID could not be reached, or did not answer a token request within ${o.seconds} s, also when retried (${o.message})`,
    ),
  entraRefused: (o: { message: string; reason?: string }): Failure => ({
    code: 'Unauthenticated',
    reason: o.reason,
    text: text(`Entra ID refused the identity: ${o.message}`),
  }),
  vaultDoesNotResolve: (o: { host: string }) =>
    failure(
      'VaultUnreachable',
      'Unavailable',
      `${o.host} does not resolve (ENOTFOUND): there is no such vault in this cloud, or DNS is failing; check keyvaultName and cloudName`,
    ),
  vaultUnreachable: (o: { code: string }) =>
    failure(
      'VaultUnreachable',
      'Unavailable',
      `the vault could not be reached (${o.code}); check keyvaultName, cloudName and the network`,
    ),
  tokenNotAccepted: (o: { message: string; reason: string }): Failure => ({
    code: 'Unauthenticated',
    reason: o.reason,
    text: text(`Key Vault did not accept the access token: ${o.message}`),
  }),
  forbidden: (o: { inner: string; message: string }): Failure => ({
    code: FORBIDDEN[o.inner]!.code,
    reason: o.inner,
    text: text(`${FORBIDDEN[o.inner]!.says}: ${o.message}`),
  }),
  refused: (o: { reason: string; message: string }): Failure => ({
    code: 'PermissionDenied',
    reason: o.reason,
    text: text(`Key Vault refused the read (${o.reason}): ${o.message}`),
  }),
  notFound: (o: { reason: string }): Failure => ({
    code: 'NotFound',
    reason: o.reason,
    text: text('not found in the vault'),
  }),
  throttled: (o: { reason: string }): Failure => ({
    code: 'ResourceExhausted',
    reason: o.reason,
    text: text('Key Vault is throttling requests and the retry budget is spent; try again later'),
  }),
  badRequest: (o: { reason: string; message: string }): Failure => ({
    code: 'InvalidArgument',
    reason: o.reason,
    text: text(`Key Vault rejected the request: ${o.message}`),
  }),
  serverError: (o: { status: number; reason: string; message: string }): Failure => ({
    code: 'Unavailable',
    reason: o.reason,
    text: text(`Key Vault answered ${o.status}: ${o.message}`),
  }),
  challengeMismatch: (o: { message: string }) =>
    failure(
      'ChallengeMismatch',
      'FailedPrecondition',
      `the vault's authentication challenge names another resource: ${o.message}`,
    ),
  cancelled: (): Failure => ({ code: 'DeadlineExceeded', text: text('the request was cancelled') }),
  other: (o: { message: string; reason?: string }): Failure => ({
    code: 'Internal',
    reason: o.reason,
    text: text(o.message),
  }),
  vaultTimeout: (o: { seconds: number }) =>
    failure('VaultTimeout', 'Unavailable', `Key Vault did not answer within ${o.seconds} s`),
  entraTimeout: (o: { seconds: number; trySeconds: number }) =>
    failure(
      'EntraTimeout',
      'Unavailable',
      `Entra ID gave no token within ${o.seconds} s (each token request is given ${o.trySeconds} s, then retried)`,
    ),
};

const ON_AKS =
  'on AKS, e.g. the kubelet identity: az aks show -g <group> -n <cluster> --query identityProfile.kubeletidentity.clientId';

/** The node's managed identity (credentials.ts); `endpoint` names IMDS or the identity endpoint, `said` what it said. */
export const MANAGED_IDENTITY = {
  /** Which identity was asked for, within the texts below. */
  which: (o: { clientId?: string }) =>
    o.clientId
      ? `the user-assigned identity '${o.clientId}' (userAssignedIdentityID)`
      : "the node's system-assigned identity",
  timeout: (o: { endpoint: string; seconds: number }) =>
    failure(
      'ManagedIdentityTimeout',
      'Unavailable',
      `useVMManagedIdentity: ${o.endpoint} gave no token within ${o.seconds} s; try again later`,
    ),
  several: (o: { endpoint: string; said: string }) =>
    failure(
      'MultipleUserAssignedIdentities',
      'Unauthenticated',
      `useVMManagedIdentity: the node has no system-assigned managed identity and several user-assigned ones, so the SecretProviderClass must name one: set userAssignedIdentityID to the client ID of the one to use (${ON_AKS}) (${o.endpoint}: "${o.said}")`,
    ),
  notAttached: (o: { endpoint: string; said: string; clientId: string }) =>
    failure(
      'IdentityNotFound',
      'Unauthenticated',
      `useVMManagedIdentity: no managed identity with client ID '${o.clientId}' (userAssignedIdentityID) is attached to this node (${o.endpoint}: "${o.said}"); attach it to the node pool's VM scale set, or set userAssignedIdentityID to the client ID of one that is (${ON_AKS})`,
    ),
  noSystemAssigned: (o: { endpoint: string; said: string }) =>
    failure(
      'IdentityNotFound',
      'Unauthenticated',
      `useVMManagedIdentity: the node has no system-assigned managed identity (${o.endpoint}: "${o.said}"); set userAssignedIdentityID to the client ID of a user-assigned identity attached to the node (${ON_AKS})`,
    ),
  unreachable: (o: { endpoint: string; said: string; what: string }) =>
    failure(
      'ManagedIdentityUnreachable',
      'Unavailable',
      `useVMManagedIdentity: ${o.endpoint} could not be reached for ${o.what}; the node's managed identity is there only on an Azure VM or AKS node whose IMDS the provider can reach: ${o.said}`,
    ),
  answered: (o: { endpoint: string; said: string; what: string; status: number }): Failure => ({
    code: 'Unavailable',
    reason: `ManagedIdentity${o.status}`,
    text: text(
      `useVMManagedIdentity: ${o.endpoint} answered ${o.status} for ${o.what}, also when retried: ${o.said}; try again later`,
    ),
  }),
  failed: (o: { endpoint: string; said: string; what: string; status?: number; reason: string }): Failure => ({
    code: 'Unauthenticated',
    reason: o.reason,
    text: text(
      `useVMManagedIdentity: ${o.endpoint} gave no token for ${o.what}${o.status ? ` (HTTP ${o.status})` : ''}: ${o.said}`,
    ),
  }),
};

/** The Mount as a whole (mount.ts). */
export const MOUNT = {
  /** The first of several failed objects, with how many more failed. */
  andMore: (o: { first: ProviderError; failed: number; of: number }): Failure => ({
    code: o.first.code,
    text: text(`${o.first.message}${o.failed > 1 ? ` (and ${o.failed - 1} more of ${o.of} objects failed)` : ''}`),
    ...(o.first.reason ? { reason: o.first.reason } : {}),
  }),
  tooLarge: (o: { vault: string; files: number; bytes: number; limit: number }) =>
    failure(
      'TooLarge',
      'ResourceExhausted',
      `vault '${o.vault}': the ${o.files} files add up to ${o.bytes} bytes, over the ${o.limit}-byte limit (a Kubernetes Secret holds at most 1 MiB); sync fewer versions or objects per SecretSync`,
    ),
  noSuchVersion: (o: { vault: string; object: string; version: string }) =>
    failure(
      'VersionNotFound',
      'NotFound',
      `vault '${o.vault}': ${o.object} has no enabled version '${o.version}' to start the history at`,
    ),
  noEnabledVersions: (o: { vault: string; object: string }) =>
    failure('NotFound', 'NotFound', `vault '${o.vault}': ${o.object} has no enabled versions`),
  /** Anything not raised as a ProviderError: its own message. */
  internal: (o: { detail: string }): Failure => ({ code: 'Internal', text: text(o.detail) }),
};

/**
 * Whether change events arrive (change-source.ts): the state every watcher gets, logged on each
 * change. Names the queue by URL and the identity by client ID, never a token.
 */
export const CHANGE_STATE = {
  receiving: (): ChangeState => ({ receiving: true }),
  notConfigured: (): ChangeState => ({
    receiving: false,
    reason: 'NotConfigured',
    message:
      "no change queue is configured (--change-queue-url; chart value provider.changeEvents.queueUrl): Key Vault's changes are found by polling only",
  }),
  notWatched: (): ChangeState => ({
    receiving: false,
    reason: 'NotWatched',
    message: 'nobody watches for changes, so the queue is not read: its events wait there for the next watcher',
  }),
  failed: (o: { queue: string; identity: string; failure: QueueFailure }): ChangeState => ({
    receiving: false,
    reason: o.failure.reason,
    message: `${failureText(o)}; Secrets are still refreshed by polling, and the queue is tried again with backoff`,
  }),
};

function failureText({
  queue,
  identity,
  failure: f,
}: {
  queue: string;
  identity: string;
  failure: QueueFailure;
}): string {
  switch (f.reason) {
    case 'TokenFailed':
      return `${identity} got no token for the storage queue: ${f.detail.slice(0, 400)}`;
    case 'Forbidden':
      return `the storage queue ${queue} refused ${identity} (${f.code}): assign it "Storage Queue Data Message Processor" on the queue or its storage account (role assignments can take minutes to apply)`;
    case 'TokenRejected':
      return `the storage queue ${queue} did not accept the token of ${identity} (${f.code}): check the identity's tenant and that the token is for https://storage.azure.com`;
    case 'QueueNotFound':
      return `the storage queue ${queue} does not exist (QueueNotFound): create it, or fix --change-queue-url`;
    case 'QueueUnreachable':
      return `the storage queue ${queue} could not be reached (${f.code})`;
    case 'QueueError':
      return `the storage queue ${queue} answered ${f.status} (${f.code})`;
  }
}
