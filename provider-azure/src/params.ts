// A Mount's attributes (SecretProviderClass parameters plus the csi.storage.k8s.io/* keys) and
// node-publish secrets, validated into typed MountParams before any network call.
import { errorMessage, ProviderError, type ParsedMountRequest } from '@secret-store-sync/proto';
import { decodeJwt } from 'jose';
import { chooseCloud, type CloudChoice } from './cloud.js';
import type { Config } from './config.js';
import { nodeIdentityRefusal } from './node-identity.js';
import { quote } from './log.js';
import { parseObjects, readsOf, type KeyVaultObject } from './objects.js';

export const WORKLOAD_IDENTITY_AUDIENCE = 'api://AzureADTokenExchange';
const TOKENS_KEY = 'csi.storage.k8s.io/serviceAccount.tokens';

export type Identity =
  | { mode: 'workloadIdentity'; clientId: string; token: string; tokenIssuer: string; tokenSubject: string }
  | { mode: 'managedIdentity'; clientId?: string }
  | { mode: 'servicePrincipal'; clientId: string; clientSecret: string };

export interface MountParams {
  vaultName: string;
  tenantId: string;
  cloud: CloudChoice;
  identity: Identity;
  objects: KeyVaultObject[];
  partial: boolean;
  pod: { namespace: string; name: string; serviceAccount: string };
  defaultMode: number;
}

const KNOWN_PARAMETERS = [
  'keyvaultName',
  'tenantID',
  'tenantId',
  'clientID',
  'cloudName',
  'cloudEnvFileName',
  'usePodIdentity',
  'useVMManagedIdentity',
  'userAssignedIdentityID',
  'useAzureTokenProxy',
  'objects',
  'enablePartialSecretSync',
];
const VAULT_NAME = /^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^[0-9a-z](?:[0-9a-z-]{0,62})(?:\.[0-9a-z-]{1,63})+$/i;

function invalid(message: string): ProviderError {
  return new ProviderError('InvalidArgument', message);
}

function parseBool(attrs: Record<string, string>, key: string): boolean {
  const v = (attrs[key] ?? '').trim();
  if (v === '') return false;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw invalid(`${key} must be true or false, got ${quote(v)}`);
}

/** What the operator allows a Mount to ask for (the provider's flags). */
export type MountPolicy = Pick<
  Config,
  | 'defaultCloud'
  | 'cloudEnvDir'
  | 'allowNodeIdentity'
  | 'nodeIdentities'
  | 'allowServicePrincipal'
  | 'maxObjectsPerMount'
  | 'maxReadsPerMount'
>;

export function parseMountParams(req: ParsedMountRequest, policy: MountPolicy, now = Date.now()): MountParams {
  const a = req.attributes;
  const get = (k: string) => (a[k] ?? '').trim();

  // Parameters that differ from a known one only in case are typos that would otherwise be
  // silently ignored (userAssignedIdentityId vs userAssignedIdentityID has bitten many users).
  for (const k of Object.keys(a)) {
    if (k.startsWith('csi.storage.k8s.io/') || KNOWN_PARAMETERS.includes(k)) continue;
    const near = KNOWN_PARAMETERS.find((p) => p.toLowerCase() === k.toLowerCase());
    if (near) throw invalid(`unknown parameter '${k}': did you mean '${near}'? (parameter names are case-sensitive)`);
  }

  const vaultName = get('keyvaultName');
  if (!vaultName) throw invalid('keyvaultName is not set');
  if (!VAULT_NAME.test(vaultName) || vaultName.includes('--')) {
    throw invalid(
      `keyvaultName ${quote(vaultName)} is not a valid vault name: 3-24 letters, digits and single hyphens, starting with a letter and not ending with a hyphen`,
    );
  }
  const cloud = chooseCloud(get('cloudName'), get('cloudEnvFileName'), policy.defaultCloud, policy.cloudEnvDir);
  const tenantId = parseTenant(get('tenantID') || get('tenantId'), cloud);
  const namespace = get('csi.storage.k8s.io/pod.namespace');
  const identity = parseIdentity(a, req.secrets, now);
  allowIdentity(identity, namespace, policy);
  const objects = parseObjects(a.objects ?? '', policy.maxObjectsPerMount);
  // Every read is a request against a vault others share: a Mount's total is capped up front.
  const reads = objects.reduce((n, o) => n + readsOf(o), 0);
  if (reads > policy.maxReadsPerMount) {
    throw invalid(
      `objects: the ${objects.length} objects (with their objectVersionHistory) need ${reads} Key Vault reads, over this provider's limit of ${policy.maxReadsPerMount} per Mount; split them over several SecretProviderClasses or ask for fewer versions`,
    );
  }
  return {
    vaultName: vaultName.toLowerCase(),
    tenantId,
    cloud,
    identity,
    objects,
    partial: parseBool(a, 'enablePartialSecretSync'),
    pod: {
      namespace,
      name: get('csi.storage.k8s.io/pod.name'),
      serviceAccount: get('csi.storage.k8s.io/serviceAccount.name'),
    },
    defaultMode: req.permission,
  };
}

/**
 * The tenant as Key Vault names it. Its challenge carries the tenant as a lowercase GUID, and
 * @azure/identity refuses a token for any other spelling before asking Entra
 * (processMultiTenantRequest compares the strings exactly): an uppercase GUID is lowered here, and
 * a domain, which no challenge carries, is refused with the way to find the GUID.
 */
function parseTenant(tenantId: string, cloud: CloudChoice): string {
  if (!tenantId) throw invalid('tenantID is not set');
  if (GUID.test(tenantId)) return tenantId.toLowerCase();
  // Azure Stack Hub with AD FS names its one tenant `adfs`.
  if (cloud.name === 'AzureStackCloud' && tenantId.toLowerCase() === 'adfs') return 'adfs';
  if (DOMAIN.test(tenantId)) {
    throw invalid(
      `tenantID ${quote(tenantId)} is a domain; set the tenant's GUID instead (az account show --query tenantId -o tsv): Key Vault names the tenant by GUID and the Azure SDK accepts only that exact tenant`,
    );
  }
  throw invalid(`tenantID ${quote(tenantId)} is not a tenant id (a GUID such as 00000000-0000-0000-0000-000000000000)`);
}

function parseIdentity(a: Record<string, string>, secrets: Record<string, string>, now: number): Identity {
  const get = (k: string) => (a[k] ?? '').trim();
  const podIdentity = parseBool(a, 'usePodIdentity');
  const vmIdentity = parseBool(a, 'useVMManagedIdentity');
  const tokenProxy = parseBool(a, 'useAzureTokenProxy');
  const clientId = get('clientID');
  const secretKey = (name: string) =>
    Object.entries(secrets)
      .find(([k]) => k.toLowerCase() === name)?.[1]
      ?.trim() ?? '';
  const spId = secretKey('clientid');
  const spSecret = secretKey('clientsecret');

  const modes = [
    podIdentity && 'usePodIdentity',
    vmIdentity && 'useVMManagedIdentity',
    tokenProxy && 'useAzureTokenProxy',
    clientId && 'clientID (workload identity)',
    (spId || spSecret) && 'a nodePublishSecretRef with clientid/clientsecret',
  ].filter(Boolean);
  if (modes.length > 1)
    throw invalid(
      `only one identity may be configured, found: ${modes.join(', ')} (the node's managed identity takes its id from userAssignedIdentityID, not clientID)`,
    );
  if (podIdentity)
    throw invalid(
      'usePodIdentity: aad-pod-identity is retired and not supported; use workload identity (set clientID and federate the ServiceAccount)',
    );
  if (tokenProxy)
    throw invalid('useAzureTokenProxy (AKS identity binding) is not supported; use workload identity (set clientID)');
  if (vmIdentity) {
    const uami = get('userAssignedIdentityID');
    return uami ? { mode: 'managedIdentity', clientId: uami } : { mode: 'managedIdentity' };
  }
  if (clientId) return { mode: 'workloadIdentity', clientId, ...workloadToken(a[TOKENS_KEY] ?? '', now) };
  if (spId || spSecret) {
    if (!spId) throw invalid('the nodePublishSecretRef secret has clientsecret but no clientid');
    if (!spSecret) throw invalid('the nodePublishSecretRef secret has clientid but no clientsecret');
    return { mode: 'servicePrincipal', clientId: spId, clientSecret: spSecret };
  }
  throw invalid(
    'no identity is configured: set clientID (workload identity), useVMManagedIdentity, or a nodePublishSecretRef with clientid and clientsecret',
  );
}

/**
 * Identities other than the caller's own workload identity are the operator's to grant: the node's
 * managed identities are shared by every namespace on the node (each namespace gets only those
 * bound to it), and a service principal's secret
 * bypasses the ServiceAccount federation the Secret Store extension relies on.
 */
function allowIdentity(identity: Identity, namespace: string, policy: MountPolicy): void {
  if (identity.mode === 'managedIdentity') {
    if (!policy.allowNodeIdentity) {
      throw invalid(
        "useVMManagedIdentity: the node's managed identity is disabled in this provider, because every namespace would share it; use workload identity (clientID), or ask an operator to enable it for this namespace (provider flags --allow-node-identity=true --node-identity-namespaces=<namespaces>; chart values provider.allowNodeIdentity, provider.nodeIdentityNamespaces, provider.nodeIdentityBindings)",
      );
    }
    const refusal = nodeIdentityRefusal(policy.nodeIdentities, namespace, identity.clientId);
    if (refusal) throw invalid(refusal);
  }
  if (identity.mode === 'servicePrincipal' && !policy.allowServicePrincipal) {
    throw invalid(
      'nodePublishSecretRef: service-principal credentials are disabled in this provider; use workload identity (clientID), or ask an operator to enable them (provider flag --allow-service-principal=true; chart value provider.allowServicePrincipal)',
    );
  }
}

/** The service-account token for the workload-identity audience, checked for shape and expiry. */
function workloadToken(json: string, now: number): { token: string; tokenIssuer: string; tokenSubject: string } {
  if (!json.trim())
    throw new ProviderError(
      'Unauthenticated',
      `no service-account token was passed (${TOKENS_KEY} is empty); the caller must request one for audience ${WORKLOAD_IDENTITY_AUDIENCE}`,
    );
  let tokens: unknown;
  try {
    tokens = JSON.parse(json);
  } catch (e) {
    throw invalid(`${TOKENS_KEY} is not valid JSON: ${errorMessage(e)}`);
  }
  const entry = (tokens as Record<string, { token?: unknown }> | null)?.[WORKLOAD_IDENTITY_AUDIENCE];
  if (!entry || typeof entry.token !== 'string' || !entry.token) {
    throw new ProviderError(
      'Unauthenticated',
      `no service-account token for audience ${WORKLOAD_IDENTITY_AUDIENCE} among the passed tokens (${Object.keys((tokens as object) ?? {}).join(', ') || 'none'})`,
    );
  }
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(entry.token);
  } catch {
    throw new ProviderError(
      'Unauthenticated',
      `the service-account token for ${WORKLOAD_IDENTITY_AUDIENCE} is not a JWT`,
    );
  }
  if (claims.exp !== undefined && claims.exp * 1000 <= now) {
    throw new ProviderError(
      'Unauthenticated',
      `the service-account token for ${WORKLOAD_IDENTITY_AUDIENCE} expired at ${new Date(claims.exp * 1000).toISOString()}`,
      'TokenExpired',
    );
  }
  return { token: entry.token, tokenIssuer: claims.iss ?? '', tokenSubject: claims.sub ?? '' };
}
