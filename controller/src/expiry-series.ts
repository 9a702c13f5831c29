// The secretsync_object_expiry_timestamp_seconds series. Tenants choose how many objects a
// SecretSync lists and what they are called, and each series costs heap (about 320 B) and a
// Prometheus series; unbounded, 800 000 of them reached the heap limit, and were rebuilt from the
// statuses at every start. So they are capped per SecretSync and in all, keeping the soonest
// expiries (what the operator must act on first), and what is left out is counted by reason.
import type { Counter, Gauge } from 'prom-client';

export interface ExpirySeriesLimits {
  /** Series per SecretSync: its soonest expiries. */
  perSecretSync: number;
  /** Series in all: the soonest across every SecretSync. */
  total: number;
}

export type DropReason = 'per_secretsync' | 'total';

interface Candidate {
  namespace: string;
  secretsync: string;
  object: string;
  seconds: number;
  exposed: boolean;
  /** Position in the heap that holds it. */
  at: number;
}

/** A binary heap that can remove any of its items (each item knows its position). */
class Heap {
  private readonly items: Candidate[] = [];
  constructor(private readonly before: (a: Candidate, b: Candidate) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): Candidate | undefined {
    return this.items[0];
  }

  push(c: Candidate): void {
    c.at = this.items.length;
    this.items.push(c);
    this.up(c.at);
  }

  remove(c: Candidate): void {
    const last = this.items.pop()!;
    if (last === c) return;
    this.items[c.at] = last;
    last.at = c.at;
    this.up(last.at);
    this.down(last.at);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!,
      b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    b.at = i;
    a.at = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(this.items[i]!, this.items[parent]!)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      let first = i;
      for (const child of [2 * i + 1, 2 * i + 2]) {
        if (child < this.items.length && this.before(this.items[child]!, this.items[first]!)) first = child;
      }
      if (first === i) return;
      this.swap(i, first);
      i = first;
    }
  }
}

/**
 * Keeps, of every SecretSync's soonest `perSecretSync` expiries, the soonest `total` as series.
 * The ones beyond `total` are remembered (at most `perSecretSync` per SecretSync, which the
 * informer cache holds anyway) so a series freed by a deleted SecretSync goes to the next soonest.
 */
export class ExpirySeries {
  private readonly bySync = new Map<string, Candidate[]>();
  /** Exported series, latest expiry on top: the first to give way to a sooner one. */
  private readonly exposed = new Heap((a, b) => a.seconds > b.seconds);
  /** Candidates over the total, soonest on top: the first to take a freed series. */
  private readonly hidden = new Heap((a, b) => a.seconds < b.seconds);

  constructor(
    private readonly gauge: Gauge<'namespace' | 'secretsync' | 'object'>,
    private readonly dropped: Counter<'reason'>,
    private readonly limits: ExpirySeriesLimits,
  ) {}

  /**
   * Replaces a SecretSync's expiries (`undefined` or empty removes its series). Returns how many
   * were left out, by reason; each call counts them again, so the counter grows with every sync
   * that reports expiries it cannot export.
   */
  set(namespace: string, secretsync: string, expiresOn: Record<string, Date> | undefined): Record<DropReason, number> {
    const key = `${namespace}/${secretsync}`;
    for (const c of this.bySync.get(key) ?? []) this.drop(c);
    this.bySync.delete(key);
    this.fill();
    const all = Object.entries(expiresOn ?? {}).map(([object, d]) => ({ object, seconds: d.getTime() / 1000 }));
    all.sort((a, b) => a.seconds - b.seconds);
    const kept: Candidate[] = all
      .slice(0, this.limits.perSecretSync)
      .map((e) => ({ namespace, secretsync, ...e, exposed: false, at: -1 }));
    for (const c of kept) this.add(c);
    if (kept.length) this.bySync.set(key, kept);
    const counts = { per_secretsync: all.length - kept.length, total: kept.filter((c) => !c.exposed).length };
    for (const reason of ['per_secretsync', 'total'] as const)
      if (counts[reason]) this.dropped.inc({ reason }, counts[reason]);
    return counts;
  }

  /** Series exported now. */
  get size(): number {
    return this.exposed.size;
  }

  private add(c: Candidate): void {
    const latest = this.exposed.peek();
    if (this.exposed.size < this.limits.total) this.expose(c);
    else if (latest && c.seconds < latest.seconds) {
      this.hide(latest);
      this.expose(c);
    } else this.hidden.push(c);
  }

  private drop(c: Candidate): void {
    if (c.exposed) this.hide(c);
    this.hidden.remove(c);
  }

  /** Gives freed series to the soonest candidates left out. */
  private fill(): void {
    while (this.exposed.size < this.limits.total && this.hidden.size) {
      const next = this.hidden.peek()!;
      this.hidden.remove(next);
      this.expose(next);
    }
  }

  private expose(c: Candidate): void {
    c.exposed = true;
    this.exposed.push(c);
    this.gauge.set({ namespace: c.namespace, secretsync: c.secretsync, object: c.object }, c.seconds);
  }

  /** From exported to left out. */
  private hide(c: Candidate): void {
    c.exposed = false;
    this.exposed.remove(c);
    this.gauge.remove({ namespace: c.namespace, secretsync: c.secretsync, object: c.object });
    this.hidden.push(c);
  }
}
