// client-node informers that keep running: an informer stops for good on any error but a 410, so
// this restarts it with backoff (it relists, and survives an apiserver restart). The informer's
// cache answers lookups by namespace and name. The cache keeps each object without its
// managedFields and kubectl's last-applied copy: nothing here reads them, and they were half of a
// cached SecretSync's heap (2.6 → 1.3 KB each, measured: see bench/README.md). Repeated string
// values are held once across the cache (StringTable).
import { errorMessage } from '@secret-store-sync/proto';
import {
  ListWatch,
  Watch,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ListPromise,
} from '@kubernetes/client-node';
import type { Logger } from './log.js';

export interface Supervised<T extends KubernetesObject> {
  informer: Informer<T>;
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
  /** Resolves after the first successful list, once the cache holds it. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * One copy of each repeated string value across the cache. JSON.parse makes a new string for
 * every value, and condition reasons and messages, apiVersion, timestamps of one second, class
 * and ServiceAccount names recur in thousands of cached objects (about 2.5 MB of 5 000 cached
 * SecretSyncs: bench/README.md, Memory). Bounded: when full it is cleared, which only restarts the
 * sharing. Values unique to one object (uid, resourceVersion, name) are left out so they do not churn it.
 */
export class StringTable {
  private readonly table = new Map<string, string>();
  constructor(
    private readonly maxEntries = 8192,
    private readonly maxLength = 256,
  ) {}

  get size(): number {
    return this.table.size;
  }

  intern(s: string): string {
    if (s.length > this.maxLength) return s;
    const shared = this.table.get(s);
    if (shared !== undefined) return shared;
    if (this.table.size >= this.maxEntries) this.table.clear();
    this.table.set(s, s);
    return s;
  }

  /** Swaps, in place, each string value under `v` for its shared copy: every value stays equal. */
  internValues(v: unknown, depth = 0): void {
    if (depth > 16 || v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (typeof x === 'string') {
        if (!UNIQUE_KEYS.has(k)) o[k] = this.intern(x);
      } else if (x !== null && typeof x === 'object') this.internValues(x, depth + 1);
    }
  }
}
const UNIQUE_KEYS = new Set(['uid', 'resourceVersion', 'name']);
const strings = new StringTable();

/** The object without what only the apiserver's bookkeeping needs (new objects: V8 keeps them compact, `delete` would not), its strings shared. */
export function slim<T extends KubernetesObject>(o: T, table: StringTable = strings): T {
  const md = o?.metadata;
  let out = o;
  if (md && (md.managedFields !== undefined || md.annotations?.[LAST_APPLIED] !== undefined)) {
    const { managedFields: _, ...metadata } = md;
    if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
      const { [LAST_APPLIED]: _a, ...annotations } = metadata.annotations;
      metadata.annotations = annotations;
    }
    out = { ...o, metadata };
  }
  table.internValues(out);
  return out;
}

/** Whether a watch's end or ERROR event is 410 Gone: its resourceVersion was compacted or left the watch cache. */
const isGone = (x: unknown): boolean => {
  const e = x as { code?: unknown; statusCode?: unknown } | null | undefined;
  return e?.code === 410 || e?.statusCode === 410;
};

/**
 * A Watch whose events carry slimmed objects (the informer caches what it is handed), and which
 * tells `onGone` when the apiserver expires the resourceVersion it resumes from: as an ERROR event
 * (a watch that fell behind) or as the watch request's own 410 (a resume after the gap).
 */
class SlimWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly onGone: () => void,
  ) {
    super(kc);
  }

  override watch(...[path, params, callback, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    return super.watch(
      path,
      params,
      (phase, obj, watchObj) => {
        if (phase !== 'ERROR') return callback(phase, slim(obj as KubernetesObject), watchObj);
        if (isGone(obj)) this.onGone();
        callback(phase, obj, watchObj);
      },
      (err) => {
        if (isGone(err)) this.onGone();
        done(err);
      },
    );
  }
}

/** The continue token: `continue` in a custom-object list (plain JSON), `_continue` in a typed one. */
const continueOf = (list: { metadata?: { _continue?: string } }): string | undefined =>
  list.metadata?._continue ?? (list.metadata as { continue?: string } | undefined)?.continue;

/** One page of a list: `cont` is the previous page's continue token (undefined for the first). */
export type PagedList<T extends KubernetesObject> = (cont: string | undefined) => ReturnType<ListPromise<T>>;

/** A collection to watch: its name for log lines, its watch path, and how to list one page. */
export interface Collection<T extends KubernetesObject> {
  what: string;
  path: string;
  listPage: PagedList<T>;
}

export function supervise<T extends KubernetesObject>(
  kc: KubeConfig,
  { what, path, listPage }: Collection<T>,
  log: Logger,
): Supervised<T> {
  let markSynced!: () => void;
  const synced = new Promise<void>((r) => (markSynced = r));
  // Synced means listed: the informer fills its cache right after this list returns, so the cache
  // is complete by the next turn of the event loop. A failed list (the CRD not yet established,
  // RBAC missing) leaves the manager unready instead of working from an empty cache.
  // Page by page, each slimmed before the next is read: one response of 50 000 whole SecretSyncs
  // did not fit a 256 MB heap beside its parse (measured: bench/README.md, Scale). The pages come
  // from one snapshot of the collection; the watch starts at its resourceVersion.
  let lists = 0;
  const listed: ListPromise<T> = async () => {
    const first = await listPage(undefined);
    const items = first.items.map((o) => slim(o));
    for (let cont = continueOf(first); cont;) {
      const page = await listPage(cont);
      for (const o of page.items) items.push(slim(o));
      cont = continueOf(page);
    }
    setImmediate(markSynced);
    // The informer compares this list with its cache: what changed or went in the gap is handled now.
    if (lists++ > 0)
      log.info('relisted', { what, objects: items.length, resourceVersion: first.metadata?.resourceVersion });
    return { ...first, items };
  };
  // The informer then lists afresh: nothing that changed while its watch was behind is lost.
  const gone = () =>
    log.info('watch expired (410 Gone); relisting', { what, resourceVersion: informer.latestResourceVersion() });
  const informer = new ListWatch<T>(path, new SlimWatch(kc, gone), listed, false);
  let stopped = false;
  let delay = 1_000;
  informer.on('connect', () => {
    delay = 1_000;
  });
  informer.on('error', (err: unknown) => {
    if (stopped) return; // stop() itself reports an abort
    const wait = delay;
    delay = Math.min(delay * 2, 30_000);
    log.warn('watch failed; restarting', { what, retryInMs: wait, error: errorMessage(err) });
    setTimeout(() => {
      if (!stopped) void start();
    }, wait).unref();
  });
  const start = async () => {
    try {
      // Resolves even when the list failed (the 'error' handler above then retries).
      await informer.start();
    } catch (e) {
      log.warn('watch start failed', { what, error: errorMessage(e) });
    }
  };
  void start();
  return {
    informer,
    get: (namespace, name) => informer.get(name, namespace) as T | undefined,
    list: (namespace) => informer.list(namespace) as T[],
    synced,
    stop: async () => {
      stopped = true;
      await informer.stop();
    },
  };
}
