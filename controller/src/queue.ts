// A deduplicating work queue with two lanes: `fast` for SecretSyncs that were created or edited
// (and retries of a failed status write), `slow` for scheduled rotations and retries of failed
// syncs. Workers drain the fast lane first, so a new SecretSync syncs at once even while thousands
// of rotations wait. A key is handed to one worker at a time; re-added while in flight, it runs
// again afterwards. The lane is only a priority: whether a run is a rotation travels with the item
// (`rotation`), and any add that is not a rotation makes the merged item not one either.
//
// Fair share by namespace (the key's part before '/'): within a lane, namespaces take turns
// (round-robin), and a namespace holding `perNamespace` workers gets no more while another
// namespace has work waiting — whatever lane either is in. Without that, one tenant's hundred
// SecretSyncs whose Mounts hang to the deadline hold every worker and all other namespaces wait.
// The cap is work-conserving: a namespace alone with work uses every worker (the usual case, and
// the bench's), so a newcomer waits at most for the first of its workers to finish.
//
// Cost: every operation is O(1) in the number of keys and namespaces, except a take while every
// namespace with work is at its cap, which scans those namespaces: at most workers / perNamespace.
export type Lane = 'fast' | 'slow';

export interface QueueItem {
  key: string;
  lane: Lane;
  /** A scheduled re-check of a healthy SecretSync (its rotation or an expiry check), not a sync or retry. */
  rotation: boolean;
  waitedMs: number;
}

const LANES = ['fast', 'slow'] as const;

/** One namespace's queued keys (with the time each was queued) per lane and its busy workers. */
interface Tenant {
  fast: Map<string, number>;
  slow: Map<string, number>;
  busy: number;
}

export function namespaceOf(key: string): string {
  const i = key.indexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

export class WorkQueue {
  private readonly tenants = new Map<string, Tenant>();
  /** Per lane, the namespaces below their cap with keys in that lane, in turn order. */
  private readonly turns: Record<Lane, Set<string>> = { fast: new Set(), slow: new Set() };
  /** Namespaces at their cap (they may still have keys queued). */
  private readonly capped = new Set<string>();
  private readonly sizes: Record<Lane, number> = { fast: 0, slow: 0 };
  /** Queued keys whose item is a rotation. */
  private readonly rotations = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Map<string, { lane: Lane; rotation: boolean }>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((item: QueueItem | undefined) => void)[] = [];
  private closed = false;

  /** `perNamespace`: workers one namespace may hold while another has work waiting (default: no cap). */
  constructor(
    private readonly onDepth?: (lane: Lane, depth: number) => void,
    private readonly perNamespace = Infinity,
  ) {}

  add(key: string, lane: Lane = 'fast', rotation = false): void {
    if (this.closed) return;
    if (this.processing.has(key)) {
      const d = this.dirty.get(key);
      this.dirty.set(
        key,
        d ? { lane: d.lane === 'fast' ? 'fast' : lane, rotation: d.rotation && rotation } : { lane, rotation },
      );
      return;
    }
    const ns = namespaceOf(key);
    const t = this.tenant(ns);
    if (t.fast.has(key) || t.slow.has(key)) {
      if (!rotation) this.rotations.delete(key);
      if (t.fast.has(key) || lane === 'slow') return;
      this.unqueue(ns, t, key, 'slow');
    } else if (rotation) {
      this.rotations.add(key);
    }
    t[lane].set(key, Date.now());
    this.sizes[lane]++;
    if (!this.capped.has(ns)) this.turns[lane].add(ns);
    this.depthChanged();
    this.dispatch();
  }

  /** Adds the key later; an earlier pending schedule for the key wins (with its lane and kind). */
  addAfter(key: string, delayMs: number, lane: Lane = 'slow', rotation = false): void {
    if (this.closed) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        this.add(key, lane, rotation);
      },
      Math.max(0, delayMs),
    );
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Forgets a key entirely (its object was deleted). */
  forget(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
    const ns = namespaceOf(key);
    const tenant = this.tenants.get(ns);
    if (tenant) for (const lane of LANES) if (tenant[lane].has(key)) this.unqueue(ns, tenant, key, lane);
    this.rotations.delete(key);
    this.dirty.delete(key);
    this.depthChanged();
  }

  get(): Promise<QueueItem | undefined> {
    const item = this.take();
    if (item || this.closed) return Promise.resolve(item);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const ns = namespaceOf(key);
    const t = this.tenants.get(ns)!;
    t.busy--;
    if (this.capped.has(ns) && t.busy < this.perNamespace) {
      // Below its cap again: back in line (at the end) for each lane it has keys in.
      this.capped.delete(ns);
      for (const lane of LANES) if (t[lane].size) this.turns[lane].add(ns);
    }
    this.dropIfIdle(ns, t);
    const again = this.dirty.get(key);
    if (again) {
      this.dirty.delete(key);
      this.add(key, again.lane, again.rotation);
    }
  }

  depth(lane: Lane): number {
    return this.sizes[lane];
  }

  scheduled(): number {
    return this.timers.size;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private tenant(ns: string): Tenant {
    let t = this.tenants.get(ns);
    if (!t) this.tenants.set(ns, (t = { fast: new Map(), slow: new Map(), busy: 0 }));
    return t;
  }

  private unqueue(ns: string, t: Tenant, key: string, lane: Lane): void {
    t[lane].delete(key);
    this.sizes[lane]--;
    if (t[lane].size === 0) this.turns[lane].delete(ns);
    this.dropIfIdle(ns, t);
  }

  private dropIfIdle(ns: string, t: Tenant): void {
    if (t.busy === 0 && t.fast.size === 0 && t.slow.size === 0) {
      this.tenants.delete(ns);
      this.capped.delete(ns);
    }
  }

  private take(): QueueItem | undefined {
    for (const lane of LANES) {
      const first = this.turns[lane].values().next();
      if (!first.done) return this.takeFrom(first.value, lane);
    }
    // Every namespace with work is at its cap: nobody else waits, so the cap does not hold them
    // back (the workers would idle) — they take turns among themselves, fast lane first.
    if (this.capped.size === 0) return undefined;
    for (const lane of LANES) {
      for (const ns of this.capped) {
        if (this.tenants.get(ns)![lane].size === 0) continue;
        // To the back of the capped ones, so the next such take starts with another namespace.
        this.capped.delete(ns);
        this.capped.add(ns);
        return this.takeFrom(ns, lane);
      }
    }
    return undefined;
  }

  private takeFrom(ns: string, lane: Lane): QueueItem {
    const t = this.tenants.get(ns)!;
    const [key, at] = t[lane].entries().next().value!;
    t[lane].delete(key);
    this.sizes[lane]--;
    this.processing.add(key);
    t.busy++;
    // Its turn is used: to the back of the line, or out of it when it has nothing left there.
    this.turns[lane].delete(ns);
    if (t.busy >= this.perNamespace) {
      this.capped.add(ns);
      for (const l of LANES) this.turns[l].delete(ns);
    } else if (t[lane].size) {
      this.turns[lane].add(ns);
    }
    this.depthChanged();
    const rotation = this.rotations.delete(key);
    return { key, lane, rotation, waitedMs: Date.now() - at };
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const item = this.take();
      if (!item) return;
      this.waiters.shift()!(item);
    }
  }

  private depthChanged(): void {
    this.onDepth?.('fast', this.sizes.fast);
    this.onDepth?.('slow', this.sizes.slow);
  }
}

/** Exponential backoff per key: 2^failures × base, capped, with ±20 % jitter. */
export class Backoff {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
  ) {}

  next(key: string, baseMs = this.baseMs): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const d = Math.min(this.capMs, baseMs * 2 ** n);
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }

  reset(key: string): void {
    this.failures.delete(key);
  }
}
