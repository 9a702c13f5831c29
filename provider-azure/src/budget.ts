// Per-vault request budget: a token bucket (rate below Key Vault's service limit) and a
// concurrency cap. Every HTTP attempt to a vault, retries included, takes one token and one slot.
// Waiters are queued per identity and served in turn, so one identity (one tenant's
// ServiceAccount) that floods a vault gets its share while others wait, not the whole budget;
// a waiter whose request is cancelled leaves the queue at once.

/** Thrown to a waiter whose signal aborted while it queued. */
function aborted(signal: AbortSignal): Error {
  const reason = signal.reason as unknown;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('the request was cancelled'), { name: 'AbortError' });
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Queues of waiters per key, served round-robin: each key in turn gets one grant. */
class FairQueue {
  private readonly queues = new Map<string, Waiter[]>();
  private size = 0;

  get length(): number {
    return this.size;
  }

  wait(key: string, signal: AbortSignal | undefined, onEnqueued: () => void): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted(signal));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, ...(signal ? { signal } : {}) };
      if (signal) {
        w.onAbort = () => {
          if (this.remove(key, w)) reject(aborted(signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      let q = this.queues.get(key);
      if (!q) this.queues.set(key, (q = []));
      q.push(w);
      this.size++;
      onEnqueued();
    });
  }

  /** Grants the next waiter in round-robin order; false when none waits. */
  grantNext(): boolean {
    const first = this.queues.entries().next();
    if (first.done) return false;
    const [key, q] = first.value;
    const w = q.shift()!;
    this.size--;
    // Round-robin: the key goes to the back of the line (or leaves it when empty).
    this.queues.delete(key);
    if (q.length > 0) this.queues.set(key, q);
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.resolve();
    return true;
  }

  private remove(key: string, w: Waiter): boolean {
    const q = this.queues.get(key);
    const i = q?.indexOf(w) ?? -1;
    if (!q || i < 0) return false;
    q.splice(i, 1);
    this.size--;
    if (q.length === 0) this.queues.delete(key);
    return true;
  }
}

export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private readonly waiters = new FairQueue();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
  }

  /** One token for `key` (the identity asking); waits its turn when the bucket is empty. */
  take(key = '', signal?: AbortSignal): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return this.waiters.wait(key, signal, () => this.schedule());
  }

  get waiting(): number {
    return this.waiters.length;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.tokens >= 1 && this.waiters.grantNext()) this.tokens -= 1;
      if (this.waiters.length > 0) this.schedule();
    }, wait);
    this.timer.unref();
  }
}

export class Semaphore {
  private active = 0;
  private readonly waiters = new FairQueue();

  constructor(private readonly limit: number) {}

  /** A slot for `key`; the returned function releases it (once). */
  async acquire(key = '', signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.limit || this.waiters.length > 0) {
      await this.waiters.wait(key, signal, () => undefined);
    } else {
      this.active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next waiter, or free it.
      if (!this.waiters.grantNext()) this.active--;
    };
  }

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }
}

export interface VaultBudget {
  bucket: TokenBucket;
  slots: Semaphore;
}

/**
 * Budgets by vault, at most `maxVaults` of them: a tenant naming many vaults cannot grow the map
 * without bound. An idle budget (nothing queued or in flight) is the one dropped; a dropped
 * budget comes back full, which is how an unused bucket would be by then anyway.
 */
export class Budgets {
  private readonly byVault = new Map<string, VaultBudget>();
  constructor(
    private readonly opts: { ratePerSecond: number; burst: number; maxConcurrency: number; maxVaults?: number },
  ) {}

  for(vault: string): VaultBudget {
    let b = this.byVault.get(vault);
    if (b) {
      this.byVault.delete(vault);
    } else {
      b = {
        bucket: new TokenBucket(this.opts.ratePerSecond, this.opts.burst),
        slots: new Semaphore(this.opts.maxConcurrency),
      };
      this.evict();
    }
    this.byVault.set(vault, b);
    return b;
  }

  get size(): number {
    return this.byVault.size;
  }

  private evict(): void {
    const max = this.opts.maxVaults ?? Infinity;
    if (this.byVault.size < max) return;
    for (const [vault, b] of this.byVault) {
      if (this.byVault.size < max) break;
      if (b.slots.inUse === 0 && b.slots.waiting === 0 && b.bucket.waiting === 0) this.byVault.delete(vault);
    }
  }
}
