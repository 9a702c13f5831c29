// Which vaults' change events the provider is receiving now, so that a shared read of one of their
// objects may last the longer window (read-share.ts, --read-share-seconds-with-events): until the
// object's event ends it. Two things must hold for a vault:
// - the change source is receiving (queue reads succeed while a manager watches); the moment it is
//   not, no window relies on events, and a read completed before it was receiving again never
//   does (the events of writes made meanwhile may still wait in the queue);
// - a Key Vault event for the vault's host has come from the queue. The queue may carry the
//   events of only some vaults (one Event Grid subscription per vault system topic): a vault whose
//   events never arrive keeps the short window.
// An event filtered out by the subscription (by subject or event type) never arrives either, so
// such a filter lets the filtered-out objects of a covered vault share up to the long window; the
// README says to set the long window to the short one then. Hosts are bounded: the queue is
// untrusted input, and a host evicted only falls back to the short window.

/** Vault hosts remembered, the least recently seen forgotten first. */
export const MAX_COVERED_VAULTS = 1024;

export interface EventCoverageOptions {
  maxHosts: number;
  /** Told the number of covered vaults whenever it changes (a gauge). */
  onCount?: (n: number) => void;
}

export class EventCoverage {
  /** When the change source last started receiving; undefined while it is not. */
  private receivingSince: number | undefined;
  /** Vault host → when its first event (since it was last forgotten) came; insertion order = least recently seen first. */
  private readonly hosts = new Map<string, number>();

  constructor(private readonly opts: EventCoverageOptions) {}

  /** The change source's state: receiving or not. */
  receiving(on: boolean): void {
    if (!on) this.receivingSince = undefined;
    else this.receivingSince ??= Date.now();
  }

  /** A Key Vault event for this vault host (lowercase, as change-events.ts gives it) came from the queue. */
  eventFrom(host: string): void {
    const since = this.hosts.get(host) ?? Date.now();
    this.hosts.delete(host);
    this.hosts.set(host, since);
    for (const oldest of this.hosts.keys()) {
      if (this.hosts.size <= this.opts.maxHosts) break;
      this.hosts.delete(oldest);
    }
    this.opts.onCount?.(this.hosts.size);
  }

  /**
   * Since when a change of this vault's objects is told by its event: a read completed since then
   * may be shared until the event (or the long window) ends it. Undefined: events do not cover it.
   */
  since(host: string): number | undefined {
    const covered = this.hosts.get(host);
    if (this.receivingSince === undefined || covered === undefined) return undefined;
    return Math.max(covered, this.receivingSince);
  }
}
