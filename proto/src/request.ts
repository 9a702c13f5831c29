// The MountRequest a caller sends, built in one place for the manager and the conformance suite, so
// a provider that passes conformance receives exactly what the manager sends it. Field by field it
// is what the Secrets Store CSI driver and the upstream sync controller send: providers written for
// the driver (HashiCorp's vault-csi-provider, the driver's e2e provider) refuse anything less, e.g.
// an empty target_path.
import type { MountRequest } from './generated/v1alpha1/MountRequest.js';

/** The upstream sync controller's target path. Providers return files; nobody writes or reads here. */
export const SYNC_TARGET_PATH = '/mnt/secrets-store';
/** 0644, sent as the JSON number of the mode (Go's json.Marshal(os.FileMode(0644)) = "420"). */
export const DEFAULT_PERMISSION = 0o644;

/** The attributes the caller sets; a SecretProviderClass cannot set or spoof them. */
export const POD_NAME_ATTRIBUTE = 'csi.storage.k8s.io/pod.name';
export const POD_UID_ATTRIBUTE = 'csi.storage.k8s.io/pod.uid';
export const POD_NAMESPACE_ATTRIBUTE = 'csi.storage.k8s.io/pod.namespace';
export const SERVICE_ACCOUNT_NAME_ATTRIBUTE = 'csi.storage.k8s.io/serviceAccount.name';
export const SERVICE_ACCOUNT_TOKENS_ATTRIBUTE = 'csi.storage.k8s.io/serviceAccount.tokens';
const CALLER_PREFIX = 'csi.storage.k8s.io/';

/** RFC 3339 in whole seconds, as Kubernetes writes times (metav1.Time) and Go providers read them. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface ServiceAccountToken {
  token: string;
  /** RFC 3339. */
  expirationTimestamp: string;
}

export interface MountRequestInput {
  /** The SecretProviderClass's spec.parameters. */
  parameters: Record<string, string>;
  /** The pod the Mount is for; for the manager, its own pod (the SecretSync's namespace). */
  pod: { name: string; uid: string; namespace: string };
  serviceAccountName: string;
  /** Tokens by audience; none (or an empty map): no serviceAccount.tokens attribute at all. */
  tokens?: Record<string, ServiceAccountToken>;
  /** nodePublishSecretRef data; the manager has none and sends "{}". */
  secrets?: Record<string, string>;
  /** Default file mode; 0644 unless set. */
  permission?: number;
  targetPath?: string;
  /** The object versions last synced (the driver sends those of the pod's current mount). */
  currentObjectVersions?: { id: string; version: string }[];
}

/** The attributes JSON object: parameters (minus caller keys) plus the caller's keys, sorted as Go's json.Marshal sorts a map. */
export function mountAttributes(input: MountRequestInput): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.parameters)) if (!k.startsWith(CALLER_PREFIX)) attributes[k] = v;
  attributes[POD_NAME_ATTRIBUTE] = input.pod.name;
  attributes[POD_UID_ATTRIBUTE] = input.pod.uid;
  attributes[POD_NAMESPACE_ATTRIBUTE] = input.pod.namespace;
  attributes[SERVICE_ACCOUNT_NAME_ATTRIBUTE] = input.serviceAccountName;
  if (input.tokens && Object.keys(input.tokens).length > 0)
    attributes[SERVICE_ACCOUNT_TOKENS_ATTRIBUTE] = JSON.stringify(input.tokens);
  return Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function buildMountRequest(input: MountRequestInput): MountRequest {
  return {
    attributes: JSON.stringify(mountAttributes(input)),
    secrets: JSON.stringify(input.secrets ?? {}),
    targetPath: input.targetPath ?? SYNC_TARGET_PATH,
    permission: JSON.stringify(input.permission ?? DEFAULT_PERMISSION),
    currentObjectVersion: (input.currentObjectVersions ?? []).map((o) => ({ id: o.id, version: o.version })),
  };
}
