// events.k8s.io/v1 Events on the SecretSync, so `kubectl describe secretsync` tells the story.
import type { EventsV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { SecretSync } from './api.js';
import { SYNC_GROUP, SYNC_VERSION } from './api.js';
import type { Logger } from './log.js';

/** A Date that serializes with the six fractional digits the apiserver wants for MicroTime. */
class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/Z$/, '000Z');
  }
}

export class EventRecorder {
  constructor(
    private readonly events: EventsV1Api,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  /** Fire and forget: an Event that cannot be written must not fail the sync. */
  record(ss: SecretSync, type: 'Normal' | 'Warning', reason: string, note: string): void {
    const now = Date.now();
    const body = {
      // client-go's naming: <object>.<unique hex>; a generateName ending in '.' is not valid.
      metadata: { name: `${ss.metadata.name.slice(0, 200)}.${now.toString(16)}${randomBytes(4).toString('hex')}` },
      eventTime: new MicroTime(now),
      reportingController: 'secret-store-sync.x-k8s.io/manager',
      reportingInstance: this.instance,
      action: 'Sync',
      reason,
      note: note.slice(0, 1024),
      type,
      regarding: { apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`, kind: 'SecretSync', name: ss.metadata.name, namespace: ss.metadata.namespace, uid: ss.metadata.uid, resourceVersion: ss.metadata.resourceVersion },
    };
    this.events.createNamespacedEvent({ namespace: ss.metadata.namespace, body }).catch((e: unknown) => {
      this.log.warn('could not record event', { secretSync: `${ss.metadata.namespace}/${ss.metadata.name}`, reason, error: String((e as Error).message ?? e) });
    });
  }
}
