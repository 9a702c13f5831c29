// Key Vault access with a request budget: one SDK client set per (vault, identity) (clients.ts),
// every HTTP attempt metered and held to the vault's budget (pipeline.ts), identical in-flight reads
// joined (inflight.ts), completed reads of current versions and version lists shared for a window
// (read-share.ts; longer where change events end it, event-coverage.ts), and values read by
// explicit version cached per identity (value-cache.ts).
// Secrets, keys and certificates take the one read path below, through the table in kinds.ts.
import type { TokenCredential } from '@azure/identity';
import type { ProviderError } from '@secret-store-sync/proto';
import type { Budgets } from './budget.js';
import { changeKey, vaultHost } from './change-keys.js';
import { ClientPool, type Clients } from './clients.js';
import { ENTRA_TRY_TIMEOUT_MS } from './credentials.js';
import { toProviderError } from './errors.js';
import { EventCoverage, MAX_COVERED_VAULTS } from './event-coverage.js';
import { AZURE, providerError } from './messages.js';
import { InFlightReads, raceAbort } from './inflight.js';
import { KINDS, type ObjectValues } from './kinds.js';
import type { Metrics } from './metrics.js';
import type { ObjectType } from './objects.js';
import { ReadShare } from './read-share.js';
import { ValueCache } from './value-cache.js';

export interface VersionInfo {
  version: string;
  enabled: boolean;
  created: number;
}

export interface AccessOptions {
  maxRetries: number;
  cacheTtlMs: number;
  cacheMaxBytes: number;
  /** SDK client sets kept, one per (vault, identity); least recently used dropped first. */
  maxClients: number;
  /** A cached value is served only if Key Vault gave this identity that very version (or listed it enabled) this recently. */
  authWindowMs: number;
  /** Distinct `vault` label values in the metrics, earned by an HTTP answer (vault-labels.ts); the rest are "other". */
  maxVaultLabels: number;
  /**
   * Deadline of one read, retries included. A hung read would otherwise hold its budget slot and
   * gather every identical Mount that joins it; kept below the manager's provider deadline.
   */
  requestTimeoutMs: number;
  /** How long a completed read of a current version or version list answers the same read (read-share.ts). */
  readShareMs: number;
  /** The same while the vault's change events are received (event-coverage.ts); at least readShareMs. */
  readShareWithEventsMs: number;
}

/** Versions listed, at most, kept by the read share (a version id weighs one). */
const READ_SHARE_MAX_WEIGHT = 200_000;

/**
 * The read's deadline passed. With the identity's token request still in flight it waited on Entra
 * (every read waits on the client's one token refresh), not on Key Vault, and is told so.
 */
function readTimeout(vault: string, what: string, seconds: number, onEntra: boolean): ProviderError {
  const context = { vault, object: what, timedOut: onEntra ? 'Entra ID' : 'Key Vault' };
  const failure = onEntra
    ? AZURE.entraTimeout({ seconds, trySeconds: ENTRA_TRY_TIMEOUT_MS / 1000 })
    : AZURE.vaultTimeout({ seconds });
  return providerError(AZURE.at({ where: `vault '${vault}': ${what}`, failure }), { context });
}

/** What every session of one KeyVaultAccess shares. */
interface Shared {
  inflight: InFlightReads;
  cache: ValueCache<ObjectValues[ObjectType]>;
  share: ReadShare;
  coverage: EventCoverage;
  metrics: Metrics;
  requestTimeoutMs: number;
}

export class KeyVaultAccess {
  private readonly clients: ClientPool;
  private readonly shared: Shared;

  constructor(opts: AccessOptions, budgets: Budgets, metrics: Metrics) {
    this.clients = new ClientPool(opts, budgets, metrics);
    this.shared = {
      inflight: new InFlightReads(),
      cache: new ValueCache({ ttlMs: opts.cacheTtlMs, maxBytes: opts.cacheMaxBytes, authWindowMs: opts.authWindowMs }),
      share: new ReadShare({
        shareMs: opts.readShareMs,
        eventsShareMs: opts.readShareWithEventsMs,
        readTimeoutMs: opts.requestTimeoutMs,
        maxWeight: READ_SHARE_MAX_WEIGHT,
      }),
      coverage: new EventCoverage({
        maxHosts: MAX_COVERED_VAULTS,
        onCount: (n) => metrics.changeEventsCoveredVaults.set(n),
      }),
      metrics,
      requestTimeoutMs: opts.requestTimeoutMs,
    };
  }

  /**
   * Reads of one vault as one identity for one Mount. `firstSync`: the caller holds none of the
   * objects yet (no current object versions), the only Mount that may take a read shared for the
   * longer window with events (read-share.ts): a re-sync — forced, edited, a rotation — is asking
   * whether something changed, and Key Vault sends no event for a disable or a delete. `fresh`:
   * the caller asked for a read now (a forceSynchronization): no shared read at all, and no read
   * in flight joined, since it may have started before what the caller wants to see.
   */
  session(o: {
    vaultUrl: string;
    vaultName: string;
    credential: TokenCredential;
    identityKey: string;
    firstSync?: boolean;
    fresh?: boolean;
  }): VaultSession {
    const clients = this.clients.get(o.vaultUrl, o.vaultName, o.credential, o.identityKey);
    return new VaultSession(this.shared, {
      clients,
      vault: o.vaultName,
      host: vaultHost(o.vaultUrl),
      identityKey: o.identityKey,
      firstSync: o.firstSync ?? false,
      fresh: o.fresh ?? false,
    });
  }

  /** Key Vault said an object changed (its change key): what is shared of its current version is dropped. */
  changed(key: string): void {
    this.shared.share.changed(key);
  }

  /** Told by the change source: whether it is receiving, and which vaults' events came (the longer share window). */
  get coverage(): Pick<EventCoverage, 'receiving' | 'eventFrom'> {
    return this.shared.coverage;
  }

  get clientCount(): number {
    return this.clients.size;
  }
}

/** Counts fresh sessions: each tags its reads, so that it joins no read already in flight. */
let freshSessions = 0;

/** Reads from one vault as one identity. Shared requests are cancelled only when all their callers have gone. */
export class VaultSession {
  readonly vault: string;
  private readonly clients: Clients;
  private readonly host: string;
  private readonly identityKey: string;
  private readonly firstSync: boolean;
  private readonly fresh: boolean;
  /** Joins no read that started before it: a fresh session's reads are its own. */
  private readonly joinTag: string;

  constructor(
    private readonly shared: Shared,
    o: { clients: Clients; vault: string; host: string; identityKey: string; firstSync: boolean; fresh: boolean },
  ) {
    this.clients = o.clients;
    this.vault = o.vault;
    this.host = o.host;
    this.identityKey = o.identityKey;
    this.firstSync = o.firstSync;
    this.fresh = o.fresh;
    this.joinTag = o.fresh ? `|fresh-${++freshSessions}` : '';
  }

  /** Since when reads of this vault may be shared for the longer window: a first sync's, while events cover it. */
  private eventsSince(): number | undefined {
    return this.firstSync ? this.shared.coverage.since(this.host) : undefined;
  }

  /**
   * One version of an object (`version` '' = the current one). An explicit version is answered
   * from the cache while Key Vault accepted this identity for it within the authorization window;
   * the current one from the cache too while the read share window of its version id lasts.
   */
  async read<K extends ObjectType>(
    kind: K,
    name: string,
    version: string,
    signal?: AbortSignal,
  ): Promise<ObjectValues[K]> {
    const { cache, metrics, share } = this.shared;
    const changes = changeKey(this.host, name);
    const generation = share.generation(changes);
    const currentKey = this.cacheKey(kind, name, '');
    const known = version || (this.fresh ? undefined : share.get<string>(currentKey, generation, this.eventsSince()));
    const hit = known ? cache.get(this.cacheKey(kind, name, known)) : undefined;
    if (hit) {
      metrics.cacheLookups.inc({ result: version ? 'hit' : 'shared' });
      return hit as ObjectValues[K];
    }
    const how = KINDS[kind];
    const value = await this.joined(
      // Within one generation: a read that started before a change event is not joined after it.
      `${this.cacheKey(kind, name, version)}|${generation}${this.joinTag}`,
      `${how.noun} '${name}'${version ? ` version '${version}'` : ''}`,
      (abortSignal) => how.get(this.clients, name, version, abortSignal),
      signal,
    );
    // Kept by version id, so the current version read now serves a pinned read of it next.
    cache.remember(this.cacheKey(kind, name, version || value.version), value, how.bytes(value));
    if (!version) share.set({ key: currentKey, changeKey: changes, generation, value: value.version, weight: 1 });
    return value;
  }

  /** All versions of an object, shared for the read share window (a new version's event ends it), joined when identical. */
  async versions(kind: ObjectType, name: string, signal?: AbortSignal): Promise<VersionInfo[]> {
    const { share, metrics } = this.shared;
    const changes = changeKey(this.host, name);
    const generation = share.generation(changes);
    const key = this.cacheKey(kind, name, '*versions');
    const recent = this.fresh ? undefined : share.get<VersionInfo[]>(key, generation, this.eventsSince());
    if (recent) {
      metrics.cacheLookups.inc({ result: 'shared' });
      return recent;
    }
    const how = KINDS[kind];
    const list = async (abortSignal: AbortSignal) => {
      const out: VersionInfo[] = [];
      for await (const p of await how.versions(this.clients, name, abortSignal)) {
        out.push({ version: p.version ?? '', enabled: p.enabled !== false, created: p.createdOn?.getTime() ?? 0 });
      }
      // A history Mount lists the versions first: the enabled ones it reads next are served from
      // the cache, as a pinned read of each would have been (a disabled one never is).
      for (const v of out) if (v.enabled) this.shared.cache.vouch(this.cacheKey(kind, name, v.version));
      return out;
    };
    const listed = await this.joined(
      `${key}|${generation}${this.joinTag}`,
      `versions of ${how.noun} '${name}'`,
      list,
      signal,
    );
    share.set({ key, changeKey: changes, generation, value: listed, weight: Math.max(1, listed.length) });
    return listed;
  }

  private cacheKey(kind: ObjectType, name: string, version: string): string {
    // The host, not the name: one vault name may exist in several clouds (vault.azure.net,
    // vault.azure.cn, …), and a read in one must never answer a read in another.
    return `${this.identityKey}|${this.host}|${kind}|${name}|${version}`;
  }

  /** Joins the identical read in flight, or starts it; `what` names the object in errors. */
  private joined<T>(
    key: string,
    what: string,
    get: (signal: AbortSignal) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const { inflight, metrics } = this.shared;
    metrics.cacheLookups.inc({ result: inflight.has(key) ? 'coalesced' : 'miss' });
    return inflight.join(key, (joined) => this.withDeadline(what, get, joined), signal);
  }

  /** `get` within the read deadline, its failure told as a ProviderError naming the vault and `what`. */
  private async withDeadline<T>(
    what: string,
    get: (signal: AbortSignal) => Promise<T>,
    joined: AbortSignal,
  ): Promise<T> {
    const { requestTimeoutMs } = this.shared;
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const signal = AbortSignal.any([joined, timeout]);
    try {
      // Raced: the SDK's wait for a token (the client's one refresh in flight) does not heed the
      // signal, so without the race a read's deadline did not end a read stuck behind Entra.
      return await raceAbort(get(signal), signal);
    } catch (e) {
      if (!signal.aborted) throw toProviderError(e, this.vault, what);
      if (timeout.aborted && !joined.aborted) {
        throw readTimeout(this.vault, what, requestTimeoutMs / 1000, this.clients.tokens.pending > 0);
      }
      throw toProviderError(
        Object.assign(new Error('the request was cancelled'), { name: 'AbortError' }),
        this.vault,
        what,
      );
    }
  }
}
