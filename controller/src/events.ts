// Events on the SecretSync, so `kubectl describe secretsync` tells the story. Core (v1) Events,
// as most controllers write them: the RBAC the upstream sync controller's chart grants (core
// `events` create/patch) is enough, and `kubectl describe` shows them like events.k8s.io ones.
import type { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { SecretSync } from './api.js';
import { SYNC_GROUP, SYNC_VERSION } from './api.js';
import type { Logger } from './log.js';

const REPORTING_CONTROLLER = 'secret-store-sync.x-k8s.io/manager';

export class EventRecorder {
  constructor(
    private readonly core: CoreV1Api,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  /** Fire and forget: an Event that cannot be written must not fail the sync. */
  record(ss: SecretSync, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const now = new Date();
    const body = {
      // client-go's naming: <object>.<unique hex>; a generateName ending in '.' is not valid.
      metadata: { name: `${ss.metadata.name.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`, namespace: ss.metadata.namespace },
      involvedObject: { apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`, kind: 'SecretSync', name: ss.metadata.name, namespace: ss.metadata.namespace, uid: ss.metadata.uid, resourceVersion: ss.metadata.resourceVersion },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: REPORTING_CONTROLLER },
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: this.instance,
      action: 'Sync',
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.core.createNamespacedEvent({ namespace: ss.metadata.namespace, body }).catch((e: unknown) => {
      this.log.warn('could not record event', { secretSync: `${ss.metadata.namespace}/${ss.metadata.name}`, reason, error: String((e as Error).message ?? e) });
    });
  }
}
