// Rotation reads shared between SecretSyncs that would send the provider the same Mount: same
// provider, same class parameters, same namespace and ServiceAccount (so the same identity and the
// same authorization). Without this, a rotation pass of 5 000 SecretSyncs over 50 classes costs
// Key Vault 5 000 × objects reads instead of 50 × objects.
//
// Only scheduled rotations of healthy SecretSyncs take a shared result, and only one fetched less
// than `windowMs` ago: rotation times already drift by ±10 % of the interval, and the window is
// kept inside that. Creates, edits, class changes and retries always ask the provider afresh (and
// their fresh result is then shared). Results are kept in memory only, never written anywhere.
import type { MountAnswer, MountInput } from './provider.js';

interface Entry {
  response: MountAnswer;
  fetchedAt: number;
}

export class SharedMounts {
  private readonly results = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<MountAnswer>>();

  constructor(
    private readonly windowMs: number,
    private readonly onShared: () => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Mounts through `mount`, or answers with a result shared by an identical Mount: one in flight,
   * or (when `share` is set) one fetched within the window.
   */
  async mount(
    input: MountInput,
    share: boolean,
    mount: (input: MountInput) => Promise<MountAnswer>,
  ): Promise<{ response: MountAnswer; shared: boolean }> {
    if (this.windowMs <= 0) return { response: await mount(input), shared: false };
    const key = keyOf(input);
    if (share) {
      const hit = this.results.get(key);
      if (hit && this.now() - hit.fetchedAt < this.windowMs) {
        this.onShared();
        return { response: hit.response, shared: true };
      }
      const pending = this.inFlight.get(key);
      if (pending) {
        this.onShared();
        return { response: await pending, shared: true };
      }
    }
    const fetchedAt = this.now();
    const p = mount(input);
    // A fresh read supersedes the one in flight for later sharers; errors are never shared later.
    this.inFlight.set(key, p);
    try {
      const response = await p;
      const prev = this.results.get(key);
      if (!prev || prev.fetchedAt <= fetchedAt) this.results.set(key, { response, fetchedAt });
      return { response, shared: false };
    } finally {
      if (this.inFlight.get(key) === p) this.inFlight.delete(key);
    }
  }

  /** Drops results too old to be shared (called periodically). */
  prune(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [k, e] of this.results) if (e.fetchedAt < cutoff) this.results.delete(k);
  }

  size(): number {
    return this.results.size;
  }
}

/**
 * What makes two Mounts the same read: provider, class parameters, namespace and ServiceAccount.
 * Not the token (fresh bytes, same identity), nor the versions last synced (the caller's own
 * bookkeeping; every sharer still decides from its own status whether anything changed).
 */
function keyOf({ provider, request }: MountInput): string {
  const parameters = Object.entries(request.parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    provider,
    parameters,
    request.pod,
    request.serviceAccountName,
    Object.keys(request.tokens ?? {}).sort(),
  ]);
}
