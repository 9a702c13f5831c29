// Which SecretSyncs a provider's change notice reaches (changes.proto): at each successful Mount
// the provider names a change key per object it returned (the x-provider-change-keys trailer), and
// this index keeps key → SecretSyncs from each SecretSync's last successful Mount. A failed Mount
// keeps the old keys; a deleted SecretSync loses them. The status keeps them too
// (syncedObjectVersions[].changeKey), so a restarted manager or a new leader knows them at once. A notice for a key nobody named costs one
// map lookup.
//
// Tenants choose how many objects their classes list, so entries are bounded: per SecretSync (its
// first objects by id) and in all. When the total is reached, the namespace holding the most
// entries gives way — never one holding fewer than the namespace asking — so no namespace can take
// another's share. What is left out is counted by reason, and those SecretSyncs simply poll.
import { CHANGE_KEY } from '@secret-store-sync/proto';
import type { MountAnswer } from './provider.js';
import { namespaceOf } from './queue.js';

export interface ChangeIndexLimits {
  /** Change keys kept per SecretSync. */
  perSecretSync: number;
  /** Change keys kept in all. */
  total: number;
}

/** Why keys a provider named are not indexed: not for an object it returned, or a cap. */
export type ChangeKeysDropReason = 'not_returned' | 'per_secretsync' | 'total';

interface Indexed {
  provider: string;
  keys: string[];
}

export class ChangeIndex {
  /** provider → change key → SecretSync keys (namespace/name). */
  private readonly byKey = new Map<string, Map<string, Set<string>>>();
  private readonly bySync = new Map<string, Indexed>();
  /** namespace → its SecretSyncs in the index, oldest first. */
  private readonly byNamespace = new Map<string, Set<string>>();
  private readonly counts = new Map<string, number>();
  private total = 0;
  /** SecretSyncs a notice named, with the mark it arrived at (SharedMounts.mark), until their run takes it. */
  private readonly notices = new Map<string, number>();

  constructor(
    private readonly limits: ChangeIndexLimits,
    private readonly onDropped: (reason: ChangeKeysDropReason, count: number) => void = () => undefined,
  ) {}

  /**
   * Replaces the SecretSync's keys with those its provider named in a successful Mount's answer;
   * answers them by object id, as the status keeps them for the next manager (`restore`).
   */
  remember(secretSync: string, provider: string, answer: MountAnswer): Record<string, string> {
    this.delete(secretSync, { keepNotice: true });
    if (!answer.changeKeys) return {};
    const returned = new Set(answer.objectVersion.map((o) => o.id));
    const named = Object.entries(answer.changeKeys.keys).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const kept: [string, string][] = [];
    const distinct = new Set<string>();
    for (const [id, key] of named) {
      if (!returned.has(id) || (!distinct.has(key) && distinct.size >= this.limits.perSecretSync)) continue;
      distinct.add(key);
      kept.push([id, key]);
    }
    const onReturned = named.filter(([id]) => returned.has(id));
    this.drop('not_returned', answer.changeKeys.dropped + named.length - onReturned.length);
    this.drop('per_secretsync', new Set(onReturned.map(([, key]) => key)).size - distinct.size);
    this.place(secretSync, provider, [...distinct]);
    return Object.fromEntries(kept);
  }

  /**
   * The keys a SecretSync's status kept from its last successful Mount, for a manager that has not
   * mounted it itself (a restart, a new leader): so its notices reach it before its next poll.
   * A Mount in this process has the last word; malformed keys are left out.
   */
  restore(secretSync: string, provider: string, keys: readonly string[]): void {
    if (this.bySync.has(secretSync)) return;
    const valid = [...new Set(keys.filter((k) => CHANGE_KEY.test(k)))];
    const capped = valid.slice(0, this.limits.perSecretSync);
    this.drop('per_secretsync', valid.length - capped.length);
    this.place(secretSync, provider, capped);
  }

  /** Adds the SecretSync's keys within the total, making room as `makeRoom` allows. */
  private place(secretSync: string, provider: string, keys: string[]): void {
    if (keys.length === 0) return;
    const room = this.makeRoom(namespaceOf(secretSync), keys.length);
    this.drop('total', keys.length - room);
    if (room > 0) this.add(secretSync, { provider, keys: keys.slice(0, room) });
  }

  /** Forgets the SecretSync (deleted, or no longer this manager's). */
  delete(secretSync: string, o: { keepNotice?: boolean } = {}): void {
    if (!o.keepNotice) this.notices.delete(secretSync);
    const old = this.bySync.get(secretSync);
    if (!old) return;
    this.bySync.delete(secretSync);
    const byKey = this.byKey.get(old.provider)!;
    for (const key of old.keys) {
      const syncs = byKey.get(key)!;
      syncs.delete(secretSync);
      if (syncs.size === 0) byKey.delete(key);
    }
    if (byKey.size === 0) this.byKey.delete(old.provider);
    const ns = namespaceOf(secretSync);
    this.byNamespace.get(ns)!.delete(secretSync);
    this.count(ns, -old.keys.length);
  }

  /**
   * The SecretSyncs whose last Mount named any of the keys, each noted as owing a read that
   * started after `mark` (a later notice moves the mark on).
   */
  noticed(provider: string, keys: readonly string[], mark: number): string[] {
    const byKey = this.byKey.get(provider);
    if (!byKey) return [];
    const found = new Set<string>();
    for (const key of keys) for (const secretSync of byKey.get(key) ?? []) found.add(secretSync);
    for (const secretSync of found) this.notices.set(secretSync, mark);
    return [...found];
  }

  /** The mark of the notice the SecretSync's next run answers, if one named it since its last run. */
  takeNotice(secretSync: string): number | undefined {
    const mark = this.notices.get(secretSync);
    this.notices.delete(secretSync);
    return mark;
  }

  /** The SecretSync is to sync afresh for another reason (an edit): a later notice marks it again. */
  clearNotice(secretSync: string): void {
    this.notices.delete(secretSync);
  }

  /** Change keys indexed in all. */
  size(): number {
    return this.total;
  }

  private add(secretSync: string, entry: Indexed): void {
    this.bySync.set(secretSync, entry);
    let byKey = this.byKey.get(entry.provider);
    if (!byKey) this.byKey.set(entry.provider, (byKey = new Map()));
    for (const key of entry.keys) {
      const syncs = byKey.get(key);
      if (syncs) syncs.add(secretSync);
      else byKey.set(key, new Set([secretSync]));
    }
    const ns = namespaceOf(secretSync);
    let mine = this.byNamespace.get(ns);
    if (!mine) this.byNamespace.set(ns, (mine = new Set()));
    mine.add(secretSync);
    this.count(ns, entry.keys.length);
  }

  /**
   * How many of `wanted` entries the namespace may add: free room first, then entries of the
   * namespace holding the most, while it would still hold more than the asking one.
   */
  private makeRoom(ns: string, wanted: number): number {
    while (this.total + wanted > this.limits.total) {
      const [largest, held] = this.largest();
      if (largest === undefined || largest === ns || held <= (this.counts.get(ns) ?? 0) + wanted) break;
      // Its oldest entry gives way; that SecretSync polls until its next Mount.
      const victim = this.byNamespace.get(largest)!.values().next().value!;
      const n = this.bySync.get(victim)!.keys.length;
      this.delete(victim, { keepNotice: true });
      this.drop('total', n);
    }
    return Math.max(0, Math.min(wanted, this.limits.total - this.total));
  }

  /** The namespace with the most entries: a scan, only when the total is reached. */
  private largest(): [string | undefined, number] {
    let best: [string | undefined, number] = [undefined, 0];
    for (const [ns, n] of this.counts) if (n > best[1]) best = [ns, n];
    return best;
  }

  private count(ns: string, delta: number): void {
    const n = (this.counts.get(ns) ?? 0) + delta;
    this.total += delta;
    if (n > 0) this.counts.set(ns, n);
    else {
      this.counts.delete(ns);
      this.byNamespace.delete(ns);
    }
  }

  private drop(reason: ChangeKeysDropReason, count: number): void {
    if (count > 0) this.onDropped(reason, count);
  }
}
