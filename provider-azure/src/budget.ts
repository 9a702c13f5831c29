// Per-vault request budget: a token bucket (rate below Key Vault's service limit) and a
// concurrency cap. Every HTTP attempt to a vault, retries included, takes one token and one slot.
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private readonly waiters: (() => void)[] = [];
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

  take(): Promise<void> {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      if (this.waiters.length > 0) this.schedule();
    }, wait);
    this.timer.unref();
  }
}

export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.queue.shift()?.();
    };
  }

  get inUse(): number {
    return this.active;
  }
}

export interface VaultBudget {
  bucket: TokenBucket;
  slots: Semaphore;
}

export class Budgets {
  private readonly byVault = new Map<string, VaultBudget>();
  constructor(private readonly opts: { ratePerSecond: number; burst: number; maxConcurrency: number }) {}

  for(vault: string): VaultBudget {
    let b = this.byVault.get(vault);
    if (!b) {
      b = { bucket: new TokenBucket(this.opts.ratePerSecond, this.opts.burst), slots: new Semaphore(this.opts.maxConcurrency) };
      this.byVault.set(vault, b);
    }
    return b;
  }
}
