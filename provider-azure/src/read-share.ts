// Completed reads of what changes in Key Vault — an object's current version id, its version list —
// shared for a window with the same read by the same identity, so a burst of Mounts of one object
// (1 000 new SecretSyncs over 20 objects, or every SecretSync told of one new version at once)
// costs one read per distinct (vault, object, identity), not one per Mount. A change event for the
// object ends its window at once, and a read in flight when the event came is neither joined nor
// kept after it, so the Mount the event causes reads anew.
//
// Two windows, so the freshness bound is: a Mount may get what Key Vault answered that identity
// up to --read-share-seconds ago (short: a burst paced by creates outlasts it); or, for a first
// sync (vault.ts) taking a read completed while the vault's events were being received
// (event-coverage.ts), until the object's event arrives and at most
// --read-share-seconds-with-events ago. The moment events stop being
// received, every read falls back to the short window.
//
// Keyed by identity like every cache here (value-cache.ts): an identity only ever gets what Key
// Vault gave that identity.

export interface ReadShareOptions {
  /** How long a completed read answers the same read; 0: never (only reads in flight are joined). */
  shareMs: number;
  /** The same for a read completed while change events covered its vault (`eventsSince`); at least shareMs. */
  eventsShareMs: number;
  /** How long an in-flight read may last (the read deadline): a change is remembered this long. */
  readTimeoutMs: number;
  /** Bound of what is kept: a version id weighs 1, a version list its length. */
  maxWeight: number;
}

interface Entry {
  value: unknown;
  at: number;
  weight: number;
}

export class ReadShare {
  private readonly entries = new Map<string, Entry>(); // insertion order = oldest first
  private weight = 0;
  /** Change key → when it last changed and its sequence number; oldest first. */
  private readonly changes = new Map<string, { seq: number; at: number }>();
  private seq = 0;

  constructor(private readonly opts: ReadShareOptions) {}

  /**
   * The generation of an object, by its change key: a read records it when it starts, and its
   * result is shared, or joined, only within the same generation.
   */
  generation(changeKey: string): number {
    return this.changes.get(changeKey)?.seq ?? 0;
  }

  /**
   * What a read of `key` returned within the window, if its object has not changed since.
   * `eventsSince`: since when the vault's events have been received (EventCoverage.since); a read
   * completed since then has the longer window.
   */
  get<T>(key: string, generation: number, eventsSince?: number): T | undefined {
    const e = this.entries.get(`${generation}|${key}`);
    if (!e) return undefined;
    const window = eventsSince !== undefined && e.at >= eventsSince ? this.opts.eventsShareMs : this.opts.shareMs;
    if (window <= 0 || Date.now() - e.at > window) return undefined;
    return e.value as T;
  }

  /** A read that started in `generation` completed; kept unless its object changed meanwhile. */
  set(o: { key: string; changeKey: string; generation: number; value: unknown; weight: number }): void {
    if (this.longestMs <= 0 || o.weight > this.opts.maxWeight || this.generation(o.changeKey) !== o.generation) return;
    const k = `${o.generation}|${o.key}`;
    this.drop(k);
    this.entries.set(k, { value: o.value, at: Date.now(), weight: o.weight });
    this.weight += o.weight;
    this.prune();
  }

  /** The object changed (a change event): nothing read of it before now is shared or joined. */
  changed(changeKey: string): void {
    this.changes.delete(changeKey);
    this.changes.set(changeKey, { seq: ++this.seq, at: Date.now() });
    // A change need not be remembered past the longest a read that started before it may last, or
    // be shared: once forgotten, the object's generation is 0 again, that of the reads before it.
    const keep = Math.max(this.longestMs, this.opts.readTimeoutMs) + 1_000;
    for (const [k, c] of this.changes) {
      if (Date.now() - c.at <= keep) break;
      this.changes.delete(k);
    }
  }

  private prune(): void {
    for (const [k, e] of this.entries) {
      if (this.weight <= this.opts.maxWeight && Date.now() - e.at <= this.longestMs) break;
      this.drop(k);
    }
  }

  private get longestMs(): number {
    return Math.max(this.opts.shareMs, this.opts.eventsShareMs);
  }

  private drop(k: string): void {
    const e = this.entries.get(k);
    if (!e) return;
    this.weight -= e.weight;
    this.entries.delete(k);
  }
}
