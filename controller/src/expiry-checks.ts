// When to re-check a SecretSync's Expiring condition between rotations. Expiry times are chosen by
// whoever writes the vault, so they are tenant input: 256 objects expiring a second apart must not
// buy one check per second per SecretSync. A check needs no provider call — the condition is
// recomputed from the expiresOn the last sync stored (status.ts) — and the next one is
//   - at the next transition (an object entering the warning window, or expiring) + 1 s, so it is
//     seen as passed;
//   - never sooner than the floor after this SecretSync's previous expiry check: transitions
//     closer together than that are reported together, at most one floor late. The default floor
//     (5 minutes, --expiry-check-min-interval-seconds) is small next to what the condition warns
//     of (days: --expiry-warning-days), and the expiry alerts read the metric, not the condition;
//     it bounds expiry-driven status writes to 12 per hour per SecretSync, whatever the vault says;
//   - plus up to a tenth of the floor of jitter, so SecretSyncs whose objects share an expiry time
//     (certificates issued together) do not all write their status in the same second.

/** Milliseconds from `now` until the next expiry check, or undefined when no transition is ahead. */
export function nextExpiryCheck(
  expiresOn: Iterable<Date>,
  o: { now: number; warnMs: number; floorMs: number; lastCheckAt?: number; random?: () => number },
): number | undefined {
  let next = Infinity;
  for (const d of expiresOn) {
    for (const t of [d.getTime() - o.warnMs, d.getTime()]) if (t > o.now && t < next) next = t;
  }
  if (next === Infinity) return undefined;
  const at = Math.max(next + 1_000, o.lastCheckAt === undefined ? -Infinity : o.lastCheckAt + o.floorMs);
  return at - o.now + Math.floor((o.random ?? Math.random)() * (o.floorMs / 10));
}
