// Which SecretSync schema the cluster serves. Helm never replaces an existing CRD, so where the
// Secret Store extension or the upstream chart was installed the upstream schema stays — without
// status.observedGeneration or status.syncedObjectVersions, which the apiserver then drops. The
// manager works on both (it reads the Ready condition's observedGeneration); this says which one
// is there, so an operator knows why those fields are missing. The same for an older copy of this
// product's CRD without the change keys the status keeps for a restarted manager.
import { errorMessage } from '@secret-store-sync/proto';
import { ApiextensionsV1Api } from '@kubernetes/client-node';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from './api.js';
import type { KubeClients } from './kube-client.js';
import type { Logger } from './log.js';

export type Schema = 'secret-store-sync' | 'upstream' | 'unknown';

export async function detectSchema(clients: KubeClients, log: Logger): Promise<Schema> {
  const name = `${SYNC_PLURAL}.${SYNC_GROUP}`;
  try {
    const crd = await clients.make(ApiextensionsV1Api).readCustomResourceDefinition({ name });
    const version = crd.spec.versions.find((v) => v.name === SYNC_VERSION);
    const status = version?.schema?.openAPIV3Schema?.properties?.status?.properties ?? {};
    const schema: Schema = 'observedGeneration' in status ? 'secret-store-sync' : 'upstream';
    if (schema === 'upstream') {
      log.warn(
        "the installed SecretSync CRD is the upstream schema: status.observedGeneration and status.syncedObjectVersions are dropped by the apiserver; the manager uses the conditions' observedGeneration instead, and after a restart or a new leader change notices reach a SecretSync only after its next sync. Apply deploy/crds/ to get them.",
        { crd: name, schema },
      );
    } else if (!('changeKey' in (status.syncedObjectVersions?.items?.properties ?? {}))) {
      log.warn(
        'the installed SecretSync CRD predates status.syncedObjectVersions[].changeKey, which the apiserver then drops: after a manager restart or a new leader, change notices reach a SecretSync only after its next sync. Apply deploy/crds/ to keep them.',
        { crd: name, schema },
      );
    } else {
      log.info('SecretSync CRD', { crd: name, schema });
    }
    return schema;
  } catch (e) {
    log.info('could not read the SecretSync CRD to tell its schema; working with either', {
      crd: name,
      error: errorMessage(e),
    });
    return 'unknown';
  }
}
