// Events on the SecretSync, so `kubectl describe secretsync` tells the story. Core (v1) Events,
// as most controllers write them: the RBAC the upstream sync controller's chart grants (core
// `events` create/patch) is enough, and `kubectl describe` shows them like events.k8s.io ones.
import { errorMessage } from '@secret-store-sync/proto';
import type { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { SecretSync } from './api.js';
import { SYNC_GROUP, SYNC_VERSION } from './api.js';
import type { Logger } from './log.js';
import type { Text } from './messages.js';

const REPORTING_CONTROLLER = 'secret-store-sync.x-k8s.io/manager';

/**
 * Bounds on Events in flight. Events are not awaited by the sync, so without a bound a burst against
 * a slow apiserver would hold thousands of requests (and sockets) for up to the call deadline. As
 * client-go's broadcaster does with its full channel, Events beyond the queue are dropped: the
 * status still says what happened, and secretsync_events_dropped_total counts what was lost.
 */
export interface EventLimits {
  inFlight: number;
  queued: number;
}

export interface EventRecorderOptions {
  /** reportingInstance: this manager's pod. */
  instance: string;
  log: Logger;
  /** Told of each Event dropped (secretsync_events_dropped_total). */
  onDropped?: () => void;
  limits?: EventLimits;
}

type EventBody = Parameters<CoreV1Api['createNamespacedEvent']>[0]['body'];

export class EventRecorder {
  private inFlight = 0;
  /** Waiting to be sent, oldest first. */
  private readonly waiting: { namespace: string; body: EventBody }[] = [];
  private dropping = false;

  private readonly instance: string;
  private readonly log: Logger;
  private readonly onDropped: () => void;
  private readonly limits: EventLimits;

  constructor(
    private readonly core: CoreV1Api,
    { instance, log, onDropped = () => {}, limits = { inFlight: 8, queued: 1_000 } }: EventRecorderOptions,
  ) {
    this.instance = instance;
    this.log = log;
    this.onDropped = onDropped;
    this.limits = limits;
  }

  /** Fire and forget: an Event that cannot be written must not fail the sync. */
  record(ss: SecretSync, type: 'Normal' | 'Warning', reason: string, message: Text): void {
    const now = new Date();
    const body: EventBody = {
      // client-go's naming: <object>.<unique hex>; a generateName ending in '.' is not valid.
      metadata: {
        name: `${ss.metadata.name.slice(0, 200)}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`,
        namespace: ss.metadata.namespace,
      },
      involvedObject: {
        apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`,
        kind: 'SecretSync',
        name: ss.metadata.name,
        namespace: ss.metadata.namespace,
        uid: ss.metadata.uid,
        resourceVersion: ss.metadata.resourceVersion,
      },
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
    const event = { namespace: ss.metadata.namespace, body };
    if (this.inFlight < this.limits.inFlight) return this.send(event);
    if (this.waiting.length < this.limits.queued) {
      this.waiting.push(event);
      return;
    }
    this.onDropped();
    if (!this.dropping) {
      this.dropping = true; // one line per episode, not one per Event
      this.log.warn('dropping Events: the apiserver is not keeping up with them', {
        inFlight: this.inFlight,
        queued: this.waiting.length,
        secretSync: `${ss.metadata.namespace}/${ss.metadata.name}`,
        reason,
      });
    }
  }

  private send(event: { namespace: string; body: EventBody }): void {
    this.inFlight++;
    // Through a promise, so that even a synchronous throw ends here and frees the slot.
    Promise.resolve()
      .then(() => this.core.createNamespacedEvent(event))
      .catch((e: unknown) => {
        this.log.warn('could not record event', {
          secretSync: `${event.namespace}/${event.body.involvedObject.name}`,
          reason: event.body.reason,
          error: errorMessage(e),
        });
      })
      .finally(() => {
        this.inFlight--;
        const next = this.waiting.shift();
        if (next) this.send(next);
        else this.dropping = false;
      });
  }
}
