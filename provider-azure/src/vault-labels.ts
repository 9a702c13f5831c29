// Which vaults get a `vault` label of their own in keyvault_requests_total and
// keyvault_request_duration_seconds. Tenants name vaults freely, so a label is earned by an HTTP
// answer from the vault (a name that never resolves or answers stays `other`), at most `max` of
// them, the least recently answered evicted with its series so the registry stays bounded.
// Key Vault answers 401 (its auth challenge) to anyone naming any existing vault, so a vault that
// only ever answered 401 never evicts one that answered an authenticated request.
import type { Metrics } from './metrics.js';

export const OTHER_VAULT = 'other';

interface Labelled {
  authenticated: boolean;
  /** The (operation, status) pairs recorded under this vault's label, to remove at eviction. */
  series: Map<string, { operation: string; status: string }>;
}

export class VaultRequestMetrics {
  // Insertion order = least recently answered first.
  private readonly labelled = new Map<string, Labelled>();

  constructor(
    private readonly metrics: Pick<Metrics, 'keyvaultRequests' | 'keyvaultDuration'>,
    private readonly max: number,
  ) {}

  /** One HTTP attempt: `status` is the vault's HTTP answer, undefined when none came (DNS, connection, abort). */
  record(vault: string, operation: string, status: number | undefined, seconds: number): void {
    const label = status === undefined ? this.touch(vault) : this.answered(vault, status !== 401);
    const s = status === undefined ? 'error' : String(status);
    this.metrics.keyvaultRequests.inc({ vault: label, operation, status: s });
    this.metrics.keyvaultDuration.observe({ vault: label, operation }, seconds);
    if (label !== OTHER_VAULT) this.labelled.get(vault)!.series.set(`${operation} ${s}`, { operation, status: s });
  }

  /** The vaults labelled now, least recently answered first. */
  vaults(): string[] {
    return [...this.labelled.keys()];
  }

  private touch(vault: string): string {
    const entry = this.labelled.get(vault);
    if (!entry) return OTHER_VAULT;
    this.labelled.delete(vault);
    this.labelled.set(vault, entry);
    return vault;
  }

  private answered(vault: string, authenticated: boolean): string {
    const entry = this.labelled.get(vault);
    if (entry) {
      entry.authenticated ||= authenticated;
      return this.touch(vault);
    }
    if (this.labelled.size >= this.max && !this.evictOne(authenticated)) return OTHER_VAULT;
    this.labelled.set(vault, { authenticated, series: new Map() });
    return vault;
  }

  /** Evicts the least recently answered vault, preferring one that only answered 401; false when none may go. */
  private evictOne(authenticated: boolean): boolean {
    let victim: string | undefined;
    for (const [vault, e] of this.labelled) {
      if (!e.authenticated) {
        victim = vault;
        break;
      }
      if (victim === undefined && authenticated) victim = vault;
    }
    if (victim === undefined) return false;
    for (const { operation, status } of this.labelled.get(victim)!.series.values()) {
      this.metrics.keyvaultRequests.remove({ vault: victim, operation, status });
      this.metrics.keyvaultDuration.remove({ vault: victim, operation });
    }
    this.labelled.delete(victim);
    return true;
  }
}
