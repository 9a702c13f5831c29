// Which of the node's managed identities each namespace may use (--node-identity-namespaces).
// Every identity attached to the node is reachable over IMDS from the provider, so naming a
// namespace must not hand it all of them: an entry binds it to one identity.
import { PARAMETERS, type Failure } from './messages.js';

/** What one namespace may ask of the node (useVMManagedIdentity). */
export interface NodeIdentityGrant {
  /** The node's default identity: useVMManagedIdentity without userAssignedIdentityID. */
  defaultIdentity: boolean;
  /** Any identity attached to the node (`<namespace>=*`), as every listed namespace had before bindings. */
  anyIdentity: boolean;
  /** User-assigned identities it may name in userAssignedIdentityID, by client ID (lowercase). */
  clientIds: ReadonlySet<string>;
}

export type NodeIdentityGrants = ReadonlyMap<string, NodeIdentityGrant>;

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CLIENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `ns` or `ns=default`: the node's default identity only; `ns=<client id>`: that user-assigned
 * identity; `ns=*`: any identity attached to the node. Entries for one namespace add up.
 */
export function parseNodeIdentities(text: string): { grants: NodeIdentityGrants } | { error: string } {
  const grants = new Map<string, { defaultIdentity: boolean; anyIdentity: boolean; clientIds: Set<string> }>();
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const eq = entry.indexOf('=');
    const namespace = eq < 0 ? entry : entry.slice(0, eq).trim();
    const identity = eq < 0 ? 'default' : entry.slice(eq + 1).trim();
    if (!NAMESPACE.test(namespace))
      return { error: `--node-identity-namespaces: '${namespace}' is not a namespace name` };
    if (identity !== 'default' && identity !== '*' && !CLIENT_ID.test(identity)) {
      return {
        error: `--node-identity-namespaces: in '${entry}', '${identity}' is not a client ID (a GUID), 'default' (the node's default identity) or '*' (any identity attached to the node)`,
      };
    }
    const grant = grants.get(namespace) ?? { defaultIdentity: false, anyIdentity: false, clientIds: new Set<string>() };
    if (identity === 'default') grant.defaultIdentity = true;
    else if (identity === '*') grant.anyIdentity = true;
    else grant.clientIds.add(identity.toLowerCase());
    grants.set(namespace, grant);
  }
  return { grants };
}

/** Why `namespace` may not use the node identity it asked for (`clientId` undefined: the default one); undefined when it may. */
export function nodeIdentityRefusal(
  grants: NodeIdentityGrants,
  namespace: string,
  clientId: string | undefined,
): Failure | undefined {
  const grant = grants.get(namespace);
  if (!grant) return PARAMETERS.nodeIdentityNotListed({ namespace });
  if (
    grant.anyIdentity ||
    (clientId === undefined ? grant.defaultIdentity : grant.clientIds.has(clientId.toLowerCase()))
  )
    return undefined;
  return PARAMETERS.nodeIdentityNotBound({
    namespace,
    ...(clientId === undefined ? {} : { clientId }),
    allowed: { defaultIdentity: grant.defaultIdentity, clientIds: [...grant.clientIds] },
  });
}
