// Leader election on a coordination.k8s.io Lease: one manager works, the others wait and take over
// once the holder stops renewing for a lease duration. A leader that cannot renew in time exits
// rather than risk two writers.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
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

export class LeaderElector {
  private leading = false;
  private lastRenew = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly api: CoordinationV1Api,
    private readonly opts: LeaderOptions,
    private readonly log: Logger,
    private readonly onChange: (leading: boolean) => void,
  ) {}

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    const period = this.leading ? (this.opts.leaseDurationSeconds * 1000) / 3 : (this.opts.leaseDurationSeconds * 1000) / 5;
    this.timer = setTimeout(() => void this.tick(), period);
  }

  private async tick(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (e) {
      this.log.warn('lease update failed', { lease: this.opts.name, error: String((e as Error)?.message ?? e) });
    }
    if (this.leading && Date.now() - this.lastRenew > this.opts.leaseDurationSeconds * 1000) {
      this.log.error('lost the lease: could not renew in time; exiting', { lease: this.opts.name });
      this.setLeading(false);
      process.exit(1);
    }
    this.schedule();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity, leaseDurationSeconds } = this.opts;
    const now = new MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
    if (!lease) {
      await this.api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
      });
      this.renewed();
      return;
    }
    const spec = lease.spec ?? {};
    const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewedAt + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < Date.now();
    if (spec.holderIdentity !== identity && !expired) {
      if (this.leading) this.setLeading(false);
      return;
    }
    const takeover = spec.holderIdentity !== identity;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: now,
        ...(takeover ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        ...(spec.acquireTime ? { acquireTime: takeover ? now : new MicroTime(new Date(spec.acquireTime).getTime()) } : {}),
      },
    };
    // replace carries the resourceVersion: a concurrent writer makes this fail with 409.
    await this.api.replaceNamespacedLease({ name, namespace, body });
    if (takeover) this.log.info('took over the lease', { lease: name, previous: spec.holderIdentity });
    this.renewed();
  }

  private renewed(): void {
    this.lastRenew = Date.now();
    if (!this.leading) this.setLeading(true);
  }

  private setLeading(v: boolean): void {
    this.leading = v;
    this.onChange(v);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
