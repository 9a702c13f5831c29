// Builders for the two custom resources the manager reads, so a test names only what its case is
// about. A field left out is left out of the object too (not defaulted to ""), so a body built here
// is what a user's manifest would be: the apiserver fills namespace, uid and generation on create.
import {
  SPC_GROUP,
  SPC_VERSION,
  SYNC_GROUP,
  SYNC_VERSION,
  type Condition,
  type SecretProviderClass,
  type SecretSync,
} from '../../controller/src/api.js';

type Mapping = { sourcePath: string; targetKey: string };

export interface SecretSyncOptions {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  /** The SecretSync's own metadata.labels (not the Secret's: that is `labels`). */
  metadataLabels?: Record<string, string>;
  /** spec.secretProviderClassName; default 'good' (the class the integration tests create). */
  spc?: string;
  /** spec.serviceAccountName; default 'default'. */
  sa?: string;
  controllerName?: string;
  forceSynchronization?: string;
  /** spec.secretObject.type; left out when not given (the manager then writes Opaque). */
  type?: string;
  /** spec.secretObject.data: mappings, or `{ targetKey: sourcePath }`; default foo → key. */
  data?: Mapping[] | Record<string, string>;
  /** spec.secretObject.labels and annotations: what the Secret carries. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  status?: SecretSync['status'];
}

const defined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** A SecretSync with the API version and kind a create needs. */
export function secretSync(o: SecretSyncOptions): SecretSync {
  const data = Array.isArray(o.data)
    ? o.data
    : o.data
      ? Object.entries(o.data).map(([targetKey, sourcePath]) => ({ sourcePath, targetKey }))
      : [{ sourcePath: 'foo', targetKey: 'key' }];
  return defined({
    apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`,
    kind: 'SecretSync',
    metadata: defined({
      name: o.name,
      namespace: o.namespace,
      uid: o.uid,
      generation: o.generation,
      resourceVersion: o.resourceVersion,
      labels: o.metadataLabels,
    }) as SecretSync['metadata'],
    spec: defined({
      secretSyncControllerName: o.controllerName,
      serviceAccountName: o.sa ?? 'default',
      secretProviderClassName: o.spc ?? 'good',
      forceSynchronization: o.forceSynchronization,
      secretObject: defined({ type: o.type, data, labels: o.labels, annotations: o.annotations }),
    }),
    status: o.status,
  });
}

export interface SecretProviderClassOptions {
  name: string;
  namespace?: string;
  uid?: string;
  /** spec.provider; left out when undefined. */
  provider?: string;
  /** spec.parameters; left out when undefined. */
  parameters?: Record<string, string>;
}

/** A SecretProviderClass with the API version and kind a create needs. */
export function secretProviderClass(o: SecretProviderClassOptions): SecretProviderClass {
  return {
    apiVersion: `${SPC_GROUP}/${SPC_VERSION}`,
    kind: 'SecretProviderClass',
    metadata: defined({ name: o.name, namespace: o.namespace, uid: o.uid }) as SecretProviderClass['metadata'],
    spec: defined({ provider: o.provider, parameters: o.parameters }),
  };
}

/** One Key Vault object as a class lists it: objectName, objectType, objectVersion, … */
export type AzureObject = Record<string, string | number>;

/** The `objects` parameter from a list of object descriptions, in the YAML shape users write. */
export function objectsYaml(objects: AzureObject[]): string {
  return (
    [
      'array:',
      ...objects.map(
        (o) =>
          '  - |\n' +
          Object.entries(o)
            .map(([k, v]) => `    ${k}: ${v}`)
            .join('\n'),
      ),
    ].join('\n') + '\n'
  );
}

export interface AzureParametersOptions {
  keyvaultName: string;
  tenantID: string;
  /** The workload identity's client ID; left out when undefined. */
  clientID?: string;
  objects: AzureObject[];
}

/** An Azure class's parameters for workload identity, with `objects` written as users write it. */
export function azureParameters(o: AzureParametersOptions): Record<string, string> {
  return defined({
    keyvaultName: o.keyvaultName,
    tenantID: o.tenantID,
    clientID: o.clientID,
    objects: objectsYaml(o.objects),
  }) as Record<string, string>;
}

/** A condition as the manager writes it; lastTransitionTime defaults to a fixed past time. */
export function condition(
  type: string,
  status: Condition['status'],
  reason: string,
  more: Partial<Condition> = {},
): Condition {
  return { type, status, reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z', ...more };
}
