// Provider reads shared between SecretSyncs that would send the provider the same Mount: same
// provider, same class parameters, same namespace and ServiceAccount (so the same identity and the
// same authorization). Without this, a rotation pass of 5 000 SecretSyncs over 50 classes costs
// Key Vault 5 000 × objects reads instead of 50 × objects.
//
// Scheduled rotations of healthy SecretSyncs take a shared result fetched less than `windowMs`
// ago: rotation times already drift by ±10 % of the interval, and the window is kept inside that.
// Runs caused by a change notice take only a result whose provider call STARTED after the notice
// arrived (`mark()` orders notices and calls, no clock involved): one started before may hold the
// old version. So a burst of notices for one object costs one read per identical Mount. Creates,
// edits, class changes and retries always ask the provider afresh (and their fresh result is then
// shared). Results are kept in memory only, never written anywhere.
import type { MountAnswer, MountInput } from './provider.js';

/** Which earlier or concurrent result a Mount may take instead of calling the provider. */
export type Share =
  /** None: ask the provider. */
  | { kind: 'fresh' }
  /** A scheduled rotation: one fetched within the window, or one in flight. */
  | { kind: 'rotation' }
  /** A run a change notice caused: one whose call started after `mark` (the notice's, from `mark()`). */
  | { kind: 'changed'; after: number };

export const FRESH: Share = { kind: 'fresh' };

/** How long a result stays for change-driven runs when the rotation window is shorter: a burst's queue wait. */
const CHANGE_RETENTION_MS = 60_000;

interface Entry {
  response: MountAnswer;
  fetchedAt: number;
  /** When the call started, in the order of `mark()`. */
  seq: number;
}

interface Pending {
  response: Promise<MountAnswer>;
  seq: number;
}

export class SharedMounts {
  private readonly results = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Pending>();
  private seq = 0;

  constructor(
    private readonly windowMs: number,
    private readonly onShared: () => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** A point in the order of provider calls: a call started after it answers `{ kind: 'changed', after }`. */
  mark(): number {
    return ++this.seq;
  }

  /** Mounts through `mount`, or answers with a result `share` allows: shared by an identical Mount. */
  async mount(
    input: MountInput,
    share: Share,
    mount: (input: MountInput) => Promise<MountAnswer>,
  ): Promise<{ response: MountAnswer; shared: boolean }> {
    const key = keyOf(input);
    const taken = this.take(key, share);
    if (taken) {
      this.onShared();
      return { response: await taken, shared: true };
    }
    const fetchedAt = this.now();
    const seq = this.mark();
    const p = mount(input);
    // A fresh read supersedes the one in flight for later sharers; errors are never shared later.
    this.inFlight.set(key, { response: p, seq });
    try {
      const response = await p;
      const prev = this.results.get(key);
      if (!prev || prev.seq <= seq) this.results.set(key, { response, fetchedAt, seq });
      return { response, shared: false };
    } finally {
      if (this.inFlight.get(key)?.response === p) this.inFlight.delete(key);
    }
  }

  private take(key: string, share: Share): Promise<MountAnswer> | undefined {
    if (share.kind === 'fresh') return undefined;
    const hit = this.results.get(key);
    const pending = this.inFlight.get(key);
    if (share.kind === 'changed') {
      if (hit && hit.seq > share.after) return Promise.resolve(hit.response);
      return pending && pending.seq > share.after ? pending.response : undefined;
    }
    if (this.windowMs <= 0) return undefined;
    if (hit && this.now() - hit.fetchedAt < this.windowMs) return Promise.resolve(hit.response);
    return pending?.response;
  }

  /** Drops results too old to be shared (called periodically). */
  prune(): void {
    const cutoff = this.now() - Math.max(this.windowMs, CHANGE_RETENTION_MS);
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
