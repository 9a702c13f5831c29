// Leader election on a coordination.k8s.io Lease: one manager works, the others wait and take over
// once the holder stops renewing. The rule that keeps it to one writer: a manager may write only
// while its last successful renewal was *sent* less than the renew deadline ago, and the renew
// deadline is shorter than the lease. Another manager takes over only after it has watched the
// Lease stay unchanged for a whole lease duration, on its own monotonic clock (as client-go does:
// no comparison of the holder's renewTime with the follower's wall clock, so skewed or jumping
// clocks do not matter). A leader that cannot renew in time, or finds another holder, exits at
// once; and every API write checks `writeBudgetMs()` first and is aborted when it runs out
// (kube-client.ts), so a leader frozen (SIGSTOP, a long GC pause) and then resumed writes nothing
// before it notices, and a slow write cannot land after a successor took over.
import { errorCode, errorMessage } from '@secret-store-sync/proto';
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';

/** Serializes with the six fractional digits MicroTime fields need. */
class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/Z$/, '000Z');
  }
}

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
}

/** Where the elector reports, and (for tests) how it exits and reads the monotonic clock. */
export interface ElectorHooks {
  log: Logger;
  /** Told when this manager starts or stops leading. */
  onChange: (leading: boolean) => void;
  exit?: (code: number) => never;
  now?: () => number;
}

/** client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry period). */
export function timings(leaseDurationSeconds: number): {
  leaseMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
} {
  const leaseMs = leaseDurationSeconds * 1000;
  return {
    leaseMs,
    renewDeadlineMs: Math.floor((leaseMs * 2) / 3),
    retryPeriodMs: Math.max(500, Math.floor(leaseMs / 7.5)),
  };
}

export class LeaderElector {
  private leading = false;
  /** Monotonic time at which the last successful renewal was sent. */
  private renewedAt = -Infinity;
  /** The Lease as last seen, and when (monotonic) it last changed. */
  private observed = '';
  private observedAt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly t: ReturnType<typeof timings>;

  private readonly log: Logger;
  private readonly onChange: (leading: boolean) => void;
  private readonly exit: (code: number) => never;
  private readonly now: () => number;

  constructor(
    private readonly api: CoordinationV1Api,
    private readonly opts: LeaderOptions,
    { log, onChange, exit = (code) => process.exit(code), now = () => performance.now() }: ElectorHooks,
  ) {
    this.t = timings(opts.leaseDurationSeconds);
    this.log = log;
    this.onChange = onChange;
    this.exit = exit;
    this.now = now;
  }

  start(): void {
    void this.tick();
  }

  /** True while this manager surely holds the lease: the fence every API write passes. */
  canWrite(): boolean {
    return this.writeBudgetMs() > 0;
  }

  /**
   * How long from now this manager surely holds the lease (0 or less: not surely): until its last
   * successful renewal was sent a renew deadline ago. A successor waits a whole lease duration
   * after it saw that renewal, so a write that ends by then cannot land after a takeover.
   */
  writeBudgetMs(): number {
    return this.leading ? this.renewedAt + this.t.renewDeadlineMs - this.now() : 0;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.t.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    const sentAt = this.now();
    let lost = false;
    try {
      lost = await this.tryAcquireOrRenew(sentAt);
    } catch (e) {
      this.log.warn('lease update failed', { lease: this.opts.name, error: errorMessage(e) });
    }
    if (this.leading && !this.stopped) {
      if (lost) return this.abdicate('another manager holds the lease');
      if (this.now() - this.renewedAt >= this.t.renewDeadlineMs)
        return this.abdicate(`could not renew within ${this.t.renewDeadlineMs / 1000} s`);
    }
    this.schedule();
  }

  /** Stops at once: in-flight work dies with the process, and nothing more is written. */
  private abdicate(why: string): void {
    this.leading = false;
    this.log.error('lost the lease; exiting so that only one manager writes', { lease: this.opts.name, reason: why });
    this.onChange(false);
    this.exit(1);
  }

  /** Returns true when the lease turned out to be someone else's while this manager led. */
  private async tryAcquireOrRenew(sentAt: number): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.opts;
    const now = new MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (errorCode(e) !== 404) throw e;
    }
    if (!lease) {
      await this.api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        },
      });
      this.renewed(sentAt);
      return false;
    }
    const spec = lease.spec ?? {};
    const seen = JSON.stringify([spec.holderIdentity, spec.renewTime, lease.metadata?.resourceVersion]);
    if (seen !== this.observed) {
      this.observed = seen;
      this.observedAt = this.now();
    }
    const holder = spec.holderIdentity ?? '';
    if (holder !== identity) {
      if (this.leading) return true;
      // Taken only when released, or unchanged for a whole lease duration as this manager saw it.
      const duration = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (holder && this.now() - this.observedAt <= duration) return false;
    }
    const takeover = holder !== identity;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: now,
        acquireTime: takeover ? now : spec.acquireTime ? new MicroTime(new Date(spec.acquireTime).getTime()) : now,
        ...(takeover ? { leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    // replace carries the resourceVersion: a concurrent writer makes this fail with 409.
    await this.api.replaceNamespacedLease({ name, namespace, body });
    if (takeover) this.log.info('took over the lease', { lease: name, previous: holder || '(released)' });
    this.renewed(sentAt);
    return false;
  }

  private renewed(sentAt: number): void {
    // A renewal that was in flight when release() began must not make this manager lead again.
    if (this.stopped) return;
    this.renewedAt = sentAt;
    if (!this.leading) {
      this.leading = true;
      this.onChange(true);
    }
  }

  /**
   * Stops electing; a leader hands the lease back (holder cleared), so a successor takes over at
   * once instead of after a lease duration — a rolling update does not pause syncing.
   */
  async release(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name, identity } = this.opts;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      const now = new MicroTime();
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
        },
      });
      this.log.info('released the lease', { lease: name });
    } catch (e) {
      this.log.warn('could not release the lease; a successor takes over when it expires', {
        lease: name,
        error: errorMessage(e),
      });
    }
  }
}
