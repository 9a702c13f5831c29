// Event Grid's part of event-driven refresh, in the Azure stand-in process: event subscriptions of a
// vault's system topic with a storage-queue endpoint (what `az eventgrid system-topic
// event-subscription create --endpoint-type storagequeue` makes), and delivery into the queue on
// Azurite, with knobs that make each fault of an at-least-once, unordered delivery happen on demand.
//
// How to use (tests, the sandbox, the provider's helpers), through test/env/azure/client.ts:
//   const azure = new AzureStack(loadStackInfo());
//   await azure.createQueue('kv-events');                                  // az storage queue create
//   const sub = await azure.subscribeVaultEvents({ vault: 'my-kv', queue: 'kv-events' }); // the subscription
//   // The reader: an identity with the queue role only, e.g. the provider's ServiceAccount
//   // (createWorkloadIdentity) or a node's managed identity (createIdentity + configureManagedIdentity).
//   await azure.assignQueueRole('Storage Queue Data Message Processor', clientId, { queue: 'kv-events' });
//   azure.queueUrl('kv-events') // https://<account>.queue.core.windows.net/kv-events: give it to the
//                               // provider; the test preload routes that host (SSS_QUEUE_ADDR/HOST, toEnv)
//   await azure.setEventDelivery(sub, { copies: 3 }); // duplicates; also hold (+ releaseHeldEvents: newest
//                                                     // first), delayMs, dropNext, dropFraction, legacyShape
//   await azure.injectQueueMessage('kv-events', 'not an event'); // a foreign message
//   (await azure.stats()).eventSubscriptions[sub]                // published, delivered, dropped, failed, held
// Admin routes (server.ts): POST /_stack/event-subscriptions, PUT /_stack/event-subscriptions/<name>/delivery,
// POST /_stack/event-subscriptions/<name>/release, POST /_stack/queues/<queue>/messages.
//
// Message encoding: one event per queue message, the event's JSON (Event Grid schema, not an array)
// in Base64. Event Grid's storage-queue handler (learn.microsoft.com/azure/event-grid/
// handler-storage-queues) writes Base64 as reproduced with Storage Explorer in
// MicrosoftDocs/azure-docs#102923 (2022), against an older note in the quickstart
// (learn.microsoft.com/azure/event-grid/custom-event-to-queue-storage) that it wrote plain text.
// Readers should accept both.
import { randomUUID } from 'node:crypto';
import { QueueClient, StorageSharedKeyCredential } from '@azure/storage-queue';

/** An event in the Event Grid schema (learn.microsoft.com/azure/event-grid/event-schema). */
export interface EventGridEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  data: Record<string, unknown>;
  dataVersion: string;
  metadataVersion: string;
}

/** Faults of one subscription's delivery, all off by default. */
export interface DeliveryKnobs {
  /** Each event is written this many times (at least once: a redelivery is the same event, same id). */
  copies: number;
  /** Hold events until release, which then delivers them newest first (an older version after a newer one). */
  hold: boolean;
  /** Wait this long before each delivery. */
  delayMs: number;
  /** Drop the next N events (never delivered: Event Grid gave up, or the message expired unread). */
  dropNext: number;
  /** Drop each event with this probability (0..1). */
  dropFraction: number;
  /** Deliver the publisher's legacy shape of its events (see the `legacyShape` constructor option). */
  legacyShape: boolean;
}

export interface SubscriptionSpec {
  name: string;
  /** The vault whose system topic this subscribes to (lowercase, as the emulator keeps it). */
  vault: string;
  queue: string;
  /** Event types to deliver; all of the topic's by default (`--included-event-types`). */
  includedEventTypes?: string[];
}

interface Subscription extends SubscriptionSpec {
  knobs: DeliveryKnobs;
  held: EventGridEvent[];
  stats: { published: number; delivered: number; dropped: number; failed: number };
}

const DEFAULT_KNOBS: DeliveryKnobs = {
  copies: 1,
  hold: false,
  delayMs: 0,
  dropNext: 0,
  dropFraction: 0,
  legacyShape: false,
};
/** Writes that fail (the queue is missing, Azurite is down) are retried this often, then counted failed. */
const DELIVERY_ATTEMPTS = 4;

export class EventGrid {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly credential: StorageSharedKeyCredential;
  private readonly pending = new Set<Promise<void>>();

  /**
   * `queueService`: Azurite's path-style service URL (https://127.0.0.1:PORT/<account>). Event Grid
   * writes with its own identity, never the reader's; here that is the account key. `legacyShape`:
   * another shape the publisher has been seen to send its events in (Key Vault: keyvault/events.ts).
   */
  constructor(
    private readonly opts: {
      queueService: string;
      account: string;
      accountKey: string;
      legacyShape?: (event: EventGridEvent) => EventGridEvent;
    },
  ) {
    this.credential = new StorageSharedKeyCredential(opts.account, opts.accountKey);
  }

  subscribe(spec: SubscriptionSpec): SubscriptionSpec {
    if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(spec.queue)) {
      // Queue naming rules (learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata).
      throw new EventGridError(400, `'${spec.queue}' is not a valid queue name`);
    }
    const existing = this.subscriptions.get(spec.name);
    const sub: Subscription = {
      ...spec,
      knobs: existing?.knobs ?? { ...DEFAULT_KNOBS },
      held: existing?.held ?? [],
      stats: existing?.stats ?? { published: 0, delivered: 0, dropped: 0, failed: 0 },
    };
    this.subscriptions.set(spec.name, sub);
    return describe(sub);
  }

  unsubscribe(name: string): boolean {
    return this.subscriptions.delete(name);
  }

  setDelivery(name: string, knobs: Partial<DeliveryKnobs>): DeliveryKnobs {
    const sub = this.get(name);
    sub.knobs = { ...sub.knobs, ...knobs };
    if (!sub.knobs.hold && sub.held.length > 0) this.release(name);
    return sub.knobs;
  }

  /** Delivers the held events, newest first. */
  release(name: string): number {
    const sub = this.get(name);
    const held = sub.held.splice(0).reverse();
    for (const event of held) this.deliver(sub, event);
    return held.length;
  }

  /** Whether any subscription listens to this vault (the emulator builds no events otherwise). */
  listens(vault: string): boolean {
    return [...this.subscriptions.values()].some((s) => s.vault === vault);
  }

  /** Hands an event of a vault's system topic to every subscription that wants it. */
  publish(vault: string, event: EventGridEvent): void {
    for (const sub of this.subscriptions.values()) {
      if (sub.vault !== vault) continue;
      if (sub.includedEventTypes && !sub.includedEventTypes.includes(event.eventType)) continue;
      sub.stats.published++;
      if (sub.knobs.dropNext > 0) {
        sub.knobs.dropNext--;
        sub.stats.dropped++;
        continue;
      }
      if (sub.knobs.dropFraction > 0 && Math.random() < sub.knobs.dropFraction) {
        sub.stats.dropped++;
        continue;
      }
      if (sub.knobs.hold) sub.held.push(event);
      else this.deliver(sub, event);
    }
  }

  /** A message that is no Key Vault event at all, written as given. */
  async injectRaw(queue: string, text: string): Promise<void> {
    await this.queue(queue).sendMessage(text);
  }

  stats(): Record<string, Subscription['stats'] & { held: number }> {
    return Object.fromEntries(
      [...this.subscriptions.values()].map((s) => [s.name, { ...s.stats, held: s.held.length }]),
    );
  }

  /** Waits for deliveries under way (a delayed one included). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private get(name: string): Subscription {
    const sub = this.subscriptions.get(name);
    if (!sub) throw new EventGridError(404, `no event subscription '${name}'`);
    return sub;
  }

  private queue(name: string): QueueClient {
    return new QueueClient(`${this.opts.queueService}/${name}`, this.credential, { retryOptions: { maxTries: 1 } });
  }

  private deliver(sub: Subscription, event: EventGridEvent): void {
    const shaped = sub.knobs.legacyShape && this.opts.legacyShape ? this.opts.legacyShape(event) : event;
    const text = Buffer.from(JSON.stringify(shaped), 'utf8').toString('base64');
    for (let i = 0; i < Math.max(1, Math.floor(sub.knobs.copies)); i++) {
      const p = this.write(sub, text).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  private async write(sub: Subscription, text: string): Promise<void> {
    if (sub.knobs.delayMs > 0) await sleep(sub.knobs.delayMs);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.queue(sub.queue).sendMessage(text);
        sub.stats.delivered++;
        return;
      } catch (err) {
        if (attempt >= DELIVERY_ATTEMPTS) {
          sub.stats.failed++;
          console.error(
            JSON.stringify({ msg: 'event delivery failed', subscription: sub.name, error: (err as Error).message }),
          );
          return;
        }
        // Event Grid retries with growing waits (10 s, 30 s, 1 min, … for up to 24 h: delivery-and-retry);
        // shortened here so a test sees the outcome within seconds.
        await sleep(250 * 2 ** attempt);
      }
    }
  }
}

export class EventGridError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function describe(s: Subscription): SubscriptionSpec {
  return {
    name: s.name,
    vault: s.vault,
    queue: s.queue,
    ...(s.includedEventTypes ? { includedEventTypes: s.includedEventTypes } : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Event Grid's time format: seven fractional digits (the documented samples, e.g. 2019-07-25T01:08:33.1036736Z). */
export function eventTime(at = new Date()): string {
  return at.toISOString().replace('Z', '0000Z');
}

/** A fresh event id (a GUID, as in every documented sample). */
export function eventId(): string {
  return randomUUID();
}
