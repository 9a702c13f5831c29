// A Mount's attributes (SecretProviderClass parameters plus the csi.storage.k8s.io/* keys) and
// node-publish secrets, validated into typed MountParams before any network call.
import type { ParsedMountRequest } from '@secret-store-sync/proto';
import { decodeJwt } from 'jose';
import { chooseCloud, type CloudChoice } from './cloud.js';
import type { Config } from './config.js';
import { nodeIdentityRefusal } from './node-identity.js';
import { PARAMETERS, providerError, TOKENS } from './messages.js';
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

function parseBool(attrs: Record<string, string>, key: string): boolean {
  const v = (attrs[key] ?? '').trim();
  if (v === '') return false;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw providerError(PARAMETERS.notBoolean({ key, value: v }));
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
    if (near) throw providerError(PARAMETERS.caseTypo({ key: k, near }));
  }

  const vaultName = get('keyvaultName');
  if (!vaultName) throw providerError(PARAMETERS.noVaultName());
  if (!VAULT_NAME.test(vaultName) || vaultName.includes('--'))
    throw providerError(PARAMETERS.badVaultName({ name: vaultName }));
  const cloud = chooseCloud(get('cloudName'), get('cloudEnvFileName'), policy.defaultCloud, policy.cloudEnvDir);
  const tenantId = parseTenant(get('tenantID') || get('tenantId'), cloud);
  const namespace = get('csi.storage.k8s.io/pod.namespace');
  const identity = parseIdentity(a, req.secrets, now);
  allowIdentity(identity, namespace, policy);
  const objects = parseObjects(a.objects ?? '', policy.maxObjectsPerMount);
  // Every read is a request against a vault others share: a Mount's total is capped up front.
  const reads = objects.reduce((n, o) => n + readsOf(o), 0);
  if (reads > policy.maxReadsPerMount) {
    throw providerError(PARAMETERS.tooManyReads({ objects: objects.length, reads, limit: policy.maxReadsPerMount }));
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
  if (!tenantId) throw providerError(PARAMETERS.noTenant());
  if (GUID.test(tenantId)) return tenantId.toLowerCase();
  // Azure Stack Hub with AD FS names its one tenant `adfs`.
  if (cloud.name === 'AzureStackCloud' && tenantId.toLowerCase() === 'adfs') return 'adfs';
  if (DOMAIN.test(tenantId)) throw providerError(PARAMETERS.tenantIsDomain({ tenantId }));
  throw providerError(PARAMETERS.notATenant({ tenantId }));
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
  if (modes.length > 1) throw providerError(PARAMETERS.severalIdentities({ modes: modes as string[] }));
  if (podIdentity) throw providerError(PARAMETERS.podIdentity());
  if (tokenProxy) throw providerError(PARAMETERS.tokenProxy());
  if (vmIdentity) {
    const uami = get('userAssignedIdentityID');
    return uami ? { mode: 'managedIdentity', clientId: uami } : { mode: 'managedIdentity' };
  }
  if (clientId) return { mode: 'workloadIdentity', clientId, ...workloadToken(a[TOKENS_KEY] ?? '', now) };
  if (spId || spSecret) {
    if (!spId) throw providerError(PARAMETERS.noClientId());
    if (!spSecret) throw providerError(PARAMETERS.noClientSecret());
    return { mode: 'servicePrincipal', clientId: spId, clientSecret: spSecret };
  }
  throw providerError(PARAMETERS.noIdentity());
}

/**
 * Identities other than the caller's own workload identity are the operator's to grant: the node's
 * managed identities are shared by every namespace on the node (each namespace gets only those
 * bound to it), and a service principal's secret
 * bypasses the ServiceAccount federation the Secret Store extension relies on.
 */
function allowIdentity(identity: Identity, namespace: string, policy: MountPolicy): void {
  if (identity.mode === 'managedIdentity') {
    if (!policy.allowNodeIdentity) throw providerError(PARAMETERS.nodeIdentityDisabled());
    const refusal = nodeIdentityRefusal(policy.nodeIdentities, namespace, identity.clientId);
    if (refusal) throw providerError(refusal);
  }
  if (identity.mode === 'servicePrincipal' && !policy.allowServicePrincipal) {
    throw providerError(PARAMETERS.servicePrincipalDisabled());
  }
}

/** The service-account token for the workload-identity audience, checked for shape and expiry. */
function workloadToken(json: string, now: number): { token: string; tokenIssuer: string; tokenSubject: string } {
  if (!json.trim()) throw providerError(TOKENS.none({ key: TOKENS_KEY, audience: WORKLOAD_IDENTITY_AUDIENCE }));
  let tokens: unknown;
  try {
    tokens = JSON.parse(json);
  } catch {
    throw providerError(PARAMETERS.tokensNotJson({ key: TOKENS_KEY }));
  }
  const entry = (tokens as Record<string, { token?: unknown }> | null)?.[WORKLOAD_IDENTITY_AUDIENCE];
  if (!entry || typeof entry.token !== 'string' || !entry.token) {
    throw providerError(
      TOKENS.noneForAudience({ audience: WORKLOAD_IDENTITY_AUDIENCE, passed: Object.keys((tokens as object) ?? {}) }),
    );
  }
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(entry.token);
  } catch {
    throw providerError(TOKENS.notJwt({ audience: WORKLOAD_IDENTITY_AUDIENCE }));
  }
  if (claims.exp !== undefined && claims.exp * 1000 <= now) {
    throw providerError(TOKENS.expired({ audience: WORKLOAD_IDENTITY_AUDIENCE, at: new Date(claims.exp * 1000) }));
  }
  return { token: entry.token, tokenIssuer: claims.iss ?? '', tokenSubject: claims.sub ?? '' };
}
