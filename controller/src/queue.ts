// A deduplicating work queue with two lanes: `fast` for SecretSyncs that were created or edited
// (and their retries), `slow` for scheduled rotations. Workers always drain the fast lane first, so
// a new SecretSync syncs at once even while thousands of rotations wait. A key is handed to one
// worker at a time; re-added while in flight, it runs again afterwards.
export type Lane = 'fast' | 'slow';

export interface QueueItem {
  key: string;
  lane: Lane;
  waitedMs: number;
}

export class WorkQueue {
  private readonly lanes: Record<Lane, Map<string, number>> = { fast: new Map(), slow: new Map() };
  private readonly processing = new Set<string>();
  private readonly dirty = new Map<string, Lane>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout; lane: Lane }>();
  private readonly waiters: ((item: QueueItem | undefined) => void)[] = [];
  private closed = false;

  constructor(private readonly onDepth?: (lane: Lane, depth: number) => void) {}

  add(key: string, lane: Lane = 'fast'): void {
    if (this.closed) return;
    if (this.processing.has(key)) {
      if (this.dirty.get(key) !== 'fast') this.dirty.set(key, lane);
      return;
    }
    if (this.lanes.fast.has(key)) return;
    if (this.lanes.slow.has(key)) {
      if (lane === 'slow') return;
      this.lanes.slow.delete(key);
    }
    this.lanes[lane].set(key, Date.now());
    this.depthChanged();
    this.dispatch();
  }

  /** Adds the key later; an earlier pending schedule for the key wins. */
  addAfter(key: string, delayMs: number, lane: Lane = 'slow'): void {
    if (this.closed) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, lane);
    }, Math.max(0, delayMs));
    timer.unref();
    this.timers.set(key, { at, timer, lane });
  }

  /** Forgets a key entirely (its object was deleted). */
  forget(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
    this.lanes.fast.delete(key);
    this.lanes.slow.delete(key);
    this.dirty.delete(key);
    this.depthChanged();
  }

  get(): Promise<QueueItem | undefined> {
    const item = this.take();
    if (item || this.closed) return Promise.resolve(item);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const lane = this.dirty.get(key);
    if (lane) {
      this.dirty.delete(key);
      this.add(key, lane);
    }
  }

  depth(lane: Lane): number {
    return this.lanes[lane].size;
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

  private take(): QueueItem | undefined {
    for (const lane of ['fast', 'slow'] as const) {
      const first = this.lanes[lane].entries().next();
      if (first.done) continue;
      const [key, at] = first.value;
      this.lanes[lane].delete(key);
      this.processing.add(key);
      this.depthChanged();
      return { key, lane, waitedMs: Date.now() - at };
    }
    return undefined;
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const item = this.take();
      if (!item) return;
      this.waiters.shift()!(item);
    }
  }

  private depthChanged(): void {
    this.onDepth?.('fast', this.lanes.fast.size);
    this.onDepth?.('slow', this.lanes.slow.size);
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
