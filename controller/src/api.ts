// The two custom resources the manager reads, and the names it owns.
export const SYNC_GROUP = 'secret-sync.x-k8s.io';
export const SYNC_VERSION = 'v1alpha1';
export const SYNC_PLURAL = 'secretsyncs';
export const SPC_GROUP = 'secrets-store.csi.x-k8s.io';
export const SPC_VERSION = 'v1';
export const SPC_PLURAL = 'secretproviderclasses';

/** Label every Secret the manager writes carries (value ""), as upstream. */
export const MANAGED_LABEL = 'secrets-store.sync.x-k8s.io';
/** Annotation every Secret the manager writes carries: the UID of the owning SecretSync. */
export const OWNER_ANNOTATION = 'secrets-store.sync.x-k8s.io/owner-uid';
export const RESERVED_PREFIX = 'secrets-store.sync.x-k8s.io';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: Date;
  deletionTimestamp?: Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SecretSync {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    secretProviderClassName: string;
    serviceAccountName: string;
    secretSyncControllerName?: string;
    forceSynchronization?: string;
    secretObject: {
      type?: string;
      data: { sourcePath: string; targetKey: string }[];
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    };
  };
  status?: {
    syncHash?: string;
    lastSuccessfulSyncTime?: string;
    observedGeneration?: number;
    /** `expiresOn` when the provider reported one (its optional expiry trailer). */
    syncedObjectVersions?: { id: string; version: string; expiresOn?: string; changeKey?: string }[];
    /** The earliest expiry among the synced objects; null removes it (merge patch). */
    expiresOn?: string | null;
    conditions?: Condition[];
  };
}

export interface SecretProviderClass {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { provider?: string; parameters?: Record<string, string> };
}

export const keyOf = (o: { metadata: { namespace: string; name: string } }) =>
  `${o.metadata.namespace}/${o.metadata.name}`;
