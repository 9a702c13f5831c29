// The stand-in's view of an Entra tenant and of Azure RBAC: managed identities (what
// `az identity create` makes), their federated credentials, service principals with client
// secrets, and role assignments (what `az role assignment create` makes) of the Key Vault roles and
// the storage queue data roles.
import { randomUUID, timingSafeEqual } from 'node:crypto';

/** The stack's one subscription and resource group: every ARM id of the stand-ins lives under it. */
export const ARM_RESOURCE_GROUP = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local-stack';

export interface Identity {
  name: string;
  kind: 'managedIdentity' | 'servicePrincipal';
  clientId: string;
  principalId: string;
  tenantId: string;
  clientSecret?: string;
  federatedCredentials: FederatedCredential[];
}

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface RoleAssignment {
  id: string;
  role: KeyVaultRole | QueueRole;
  principalId: string;
  /**
   * An ARM scope: `/subscriptions/…/providers/Microsoft.KeyVault/vaults/<name>`,
   * `…/providers/Microsoft.Storage/storageAccounts/<account>[/queueServices/default/queues/<queue>]`,
   * a resource group, or `/`.
   */
  scope: string;
}

/** Data actions of Azure's built-in Key Vault roles, as Key Vault checks them. */
export const ROLE_ACTIONS = {
  'Key Vault Administrator': ['*'],
  'Key Vault Reader': ['*/read', 'secrets/readMetadata/action'],
  'Key Vault Secrets User': ['secrets/getSecret/action', 'secrets/readMetadata/action'],
  'Key Vault Secrets Officer': ['secrets/*'],
  'Key Vault Certificates Officer': [
    'certificates/*',
    'keys/read',
    'secrets/getSecret/action',
    'secrets/readMetadata/action',
  ],
  'Key Vault Certificate User': [
    'certificates/read',
    'secrets/getSecret/action',
    'secrets/readMetadata/action',
    'keys/read',
  ],
  'Key Vault Crypto Officer': ['keys/*'],
  'Key Vault Crypto User': [
    'keys/read',
    'keys/encrypt/action',
    'keys/decrypt/action',
    'keys/sign/action',
    'keys/verify/action',
  ],
} as const satisfies Record<string, readonly string[]>;
export type KeyVaultRole = keyof typeof ROLE_ACTIONS;

export function isRole(name: string): name is KeyVaultRole {
  return Object.hasOwn(ROLE_ACTIONS, name);
}

const QUEUE = 'Microsoft.Storage/storageAccounts/queueServices/queues';
/**
 * The built-in storage queue data roles, Actions and DataActions together (both are checked for
 * queue requests made with an Entra token): learn.microsoft.com/azure/role-based-access-control/
 * built-in-roles/storage ("Storage Queue Data Contributor", "… Message Processor", "… Message
 * Sender", "… Reader"). The Message Processor may peek, receive and delete messages and nothing
 * else: not even Get Queue Metadata, which needs `queues/read`, an Action only the Contributor and
 * the Reader hold.
 */
export const QUEUE_ROLE_PERMISSIONS = {
  'Storage Queue Data Contributor': [
    `${QUEUE}/delete`,
    `${QUEUE}/read`,
    `${QUEUE}/write`,
    `${QUEUE}/messages/delete`,
    `${QUEUE}/messages/read`,
    `${QUEUE}/messages/write`,
    `${QUEUE}/messages/process/action`,
    `${QUEUE}/messages/add/action`,
  ],
  'Storage Queue Data Message Processor': [`${QUEUE}/messages/read`, `${QUEUE}/messages/process/action`],
  'Storage Queue Data Message Sender': [`${QUEUE}/messages/add/action`],
  'Storage Queue Data Reader': [`${QUEUE}/read`, `${QUEUE}/messages/read`],
} as const satisfies Record<string, readonly string[]>;
export type QueueRole = keyof typeof QUEUE_ROLE_PERMISSIONS;

function isQueueRole(name: string): name is QueueRole {
  return Object.hasOwn(QUEUE_ROLE_PERMISSIONS, name);
}

/** A queue request's target: the queue is absent for service-level requests (List Queues). */
export interface QueueResource {
  account: string;
  queue?: string;
}

/**
 * A scope covers a queue when it is the queue, its storage account, or an ARM ancestor without a
 * provider segment (a resource group, a subscription, `/`). List Queues is authorized at the account
 * or above only (authorize-with-azure-active-directory, "Permissions for Queue service operations").
 */
function scopeCoversQueue(scope: string, target: QueueResource): boolean {
  const s = scope.toLowerCase().replace(/\/+$/, '');
  if (!s.includes('/providers/')) return true;
  const m =
    /\/providers\/microsoft\.storage\/storageaccounts\/([^/]+)(?:\/queueservices\/default\/queues\/([^/]+))?$/.exec(s);
  if (!m || m[1] !== target.account.toLowerCase()) return false;
  return m[2] === undefined || m[2] === target.queue?.toLowerCase();
}

function actionMatches(pattern: string, action: string): boolean {
  if (pattern === '*') return true;
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
        .join('[^]*') +
      '$',
  );
  return re.test(action);
}

/** A scope covers a vault when it is the vault itself or one of its ARM ancestors. */
function scopeCovers(scope: string, vaultName: string): boolean {
  const s = scope.toLowerCase().replace(/\/+$/, '');
  if (s === '') return true;
  const vaultMatch = /\/providers\/microsoft\.keyvault\/vaults\/([^/]+)$/.exec(s);
  if (vaultMatch) return vaultMatch[1] === vaultName.toLowerCase();
  return !s.includes('/providers/');
}

export class Directory {
  readonly identities = new Map<string, Identity>(); // by clientId
  readonly roleAssignments: RoleAssignment[] = [];

  constructor(readonly defaultTenant: string) {}

  createIdentity(opts: {
    name: string;
    kind?: Identity['kind'];
    tenantId?: string;
    clientSecret?: string;
    clientId?: string;
  }): Identity {
    const existing = [...this.identities.values()].find(
      (i) => i.name === opts.name && i.tenantId === (opts.tenantId ?? this.defaultTenant),
    );
    if (existing) return existing; // `az identity create` is idempotent by name
    const identity: Identity = {
      name: opts.name,
      kind: opts.kind ?? (opts.clientSecret ? 'servicePrincipal' : 'managedIdentity'),
      clientId: opts.clientId ?? randomUUID(),
      principalId: randomUUID(),
      tenantId: opts.tenantId ?? this.defaultTenant,
      federatedCredentials: [],
      ...(opts.clientSecret ? { clientSecret: opts.clientSecret } : {}),
    };
    this.identities.set(identity.clientId, identity);
    return identity;
  }

  findIdentity(ref: string): Identity | undefined {
    return (
      this.identities.get(ref) ?? [...this.identities.values()].find((i) => i.principalId === ref || i.name === ref)
    );
  }

  addFederatedCredential(identityRef: string, fic: FederatedCredential): FederatedCredential {
    const identity = this.findIdentity(identityRef);
    if (!identity) throw new DirectoryError(404, `identity '${identityRef}' not found`);
    if (identity.federatedCredentials.length >= 20 && !identity.federatedCredentials.some((f) => f.name === fic.name)) {
      throw new DirectoryError(400, 'an identity holds at most 20 federated identity credentials');
    }
    identity.federatedCredentials = identity.federatedCredentials.filter((f) => f.name !== fic.name);
    identity.federatedCredentials.push(fic);
    return fic;
  }

  assignRole(opts: { role: string; assignee: string; scope: string }): RoleAssignment {
    if (!isRole(opts.role) && !isQueueRole(opts.role)) {
      const known = [...Object.keys(ROLE_ACTIONS), ...Object.keys(QUEUE_ROLE_PERMISSIONS)];
      throw new DirectoryError(400, `unknown role '${opts.role}'; known: ${known.join(', ')}`);
    }
    const identity = this.findIdentity(opts.assignee);
    if (!identity) throw new DirectoryError(400, `assignee '${opts.assignee}' not found`);
    const ra: RoleAssignment = {
      id: randomUUID(),
      role: opts.role,
      principalId: identity.principalId,
      scope: opts.scope,
    };
    this.roleAssignments.push(ra);
    return ra;
  }

  removeRoleAssignments(filter: { assignee?: string; scope?: string; role?: string }): number {
    const principal = filter.assignee ? this.findIdentity(filter.assignee)?.principalId : undefined;
    const before = this.roleAssignments.length;
    for (let i = this.roleAssignments.length - 1; i >= 0; i--) {
      const ra = this.roleAssignments[i]!;
      if (
        (principal === undefined || ra.principalId === principal) &&
        (!filter.scope || ra.scope === filter.scope) &&
        (!filter.role || ra.role === filter.role)
      ) {
        this.roleAssignments.splice(i, 1);
      }
    }
    return before - this.roleAssignments.length;
  }

  /** Whether the principal may perform `action` (e.g. `secrets/getSecret/action`) on the vault. */
  allowed(principalId: string, vaultName: string, action: string): boolean {
    return this.roleAssignments.some(
      (ra) =>
        ra.principalId === principalId &&
        isRole(ra.role) &&
        scopeCovers(ra.scope, vaultName) &&
        ROLE_ACTIONS[ra.role].some((p) => actionMatches(p, action)),
    );
  }

  /**
   * Whether the principal holds every permission of one of the alternatives (a queue operation may
   * be allowed by either of two permission sets, e.g. Delete Message by `messages/process/action`
   * or by `messages/delete`).
   */
  allowedOnQueue(principalId: string, target: QueueResource, alternatives: readonly (readonly string[])[]): boolean {
    const held = new Set<string>(
      this.roleAssignments
        .filter((ra) => ra.principalId === principalId && isQueueRole(ra.role) && scopeCoversQueue(ra.scope, target))
        .flatMap((ra) => QUEUE_ROLE_PERMISSIONS[ra.role as QueueRole]),
    );
    return alternatives.some((all) => all.every((p) => held.has(p)));
  }

  checkSecret(identity: Identity, secret: string): boolean {
    if (!identity.clientSecret) return false;
    const a = Buffer.from(identity.clientSecret);
    const b = Buffer.from(secret);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

export class DirectoryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
