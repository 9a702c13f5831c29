// Values read by explicit version (immutable in Key Vault), kept per identity and bounded in bytes,
// least recently used dropped first. One is served only while Key Vault gave this identity that
// very version (or listed it enabled) within the authorization window, so revoked access or a
// disabled version is not served from memory.

export interface ValueCacheOptions {
  ttlMs: number;
  maxBytes: number;
  authWindowMs: number;
}

interface Entry<V> {
  value: V;
  bytes: number;
  expires: number;
  /**
   * When Key Vault last gave this identity this version, or listed it as enabled. Kept per entry, not
   * per vault or object: reads of other objects, or of the same object's current version, say nothing
   * about whether this version is still readable (a role on one secret revoked, a version disabled).
   */
  authorizedAt: number;
}

/** Bookkeeping per entry, so a flood of tiny values is bounded by count too. */
const ENTRY_OVERHEAD = 256;

export class ValueCache<V> {
  private readonly entries = new Map<string, Entry<V>>(); // insertion order = LRU order
  private bytes = 0;

  constructor(private readonly opts: ValueCacheOptions) {}

  /** The value, if it has not expired and was authorized within the window. */
  get(key: string): V | undefined {
    const hit = this.entries.get(key);
    if (hit && hit.expires > Date.now() && Date.now() - hit.authorizedAt <= this.opts.authWindowMs) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    if (hit && hit.expires <= Date.now()) this.drop(key);
    return undefined;
  }

  /** Key Vault just gave this identity `value`: kept, and authorized from now. */
  remember(key: string, value: V, bytes: number): void {
    const cost = bytes + ENTRY_OVERHEAD;
    if (this.opts.ttlMs <= 0 || cost > this.opts.maxBytes) return;
    this.drop(key);
    this.entries.set(key, { value, bytes: cost, expires: Date.now() + this.opts.ttlMs, authorizedAt: Date.now() });
    this.bytes += cost;
    for (const k of this.entries.keys()) {
      if (this.bytes <= this.opts.maxBytes) break;
      this.drop(k);
    }
  }

  /** Key Vault just listed this cached version as enabled to this identity: it may be served again. */
  vouch(key: string): void {
    const e = this.entries.get(key);
    if (e) e.authorizedAt = Date.now();
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.bytes -= e.bytes;
    this.entries.delete(key);
  }
}
