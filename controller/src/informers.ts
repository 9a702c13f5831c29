// client-node informers that keep running: an informer stops for good on any error but a 410, so
// this restarts it with backoff (it relists, and survives an apiserver restart). The informer's
// cache answers lookups by namespace and name. The cache keeps each object without its
// managedFields and kubectl's last-applied copy: nothing here reads them, and they were half of a
// cached SecretSync's heap (2.6 → 1.3 KB each, measured: see bench/README.md).
import { ListWatch, Watch, type Informer, type KubeConfig, type KubernetesObject, type ListPromise } from '@kubernetes/client-node';
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

/** The object without what only the apiserver's bookkeeping needs (new objects: V8 keeps them compact, `delete` would not). */
export function slim<T extends KubernetesObject>(o: T): T {
  const md = o?.metadata;
  if (!md || (md.managedFields === undefined && md.annotations?.[LAST_APPLIED] === undefined)) return o;
  const { managedFields: _, ...metadata } = md;
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _a, ...annotations } = metadata.annotations;
    metadata.annotations = annotations;
  }
  return { ...o, metadata };
}

/** A Watch whose events carry slimmed objects (the informer caches what it is handed). */
class SlimWatch extends Watch {
  override watch(...[path, params, callback, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    return super.watch(path, params, (phase, obj, watchObj) => callback(phase, slim(obj as KubernetesObject), watchObj), done);
  }
}

/** The continue token: `continue` in a custom-object list (plain JSON), `_continue` in a typed one. */
const continueOf = (list: { metadata?: { _continue?: string } }): string | undefined => list.metadata?._continue ?? (list.metadata as { continue?: string } | undefined)?.continue;

/** One page of a list: `cont` is the previous page's continue token (undefined for the first). */
export type PagedList<T extends KubernetesObject> = (cont: string | undefined) => ReturnType<ListPromise<T>>;

export function supervise<T extends KubernetesObject>(kc: KubeConfig, path: string, listPage: PagedList<T>, log: Logger, what: string): Supervised<T> {
  let markSynced!: () => void;
  const synced = new Promise<void>((r) => (markSynced = r));
  // Synced means listed: the informer fills its cache right after this list returns, so the cache
  // is complete by the next turn of the event loop. A failed list (the CRD not yet established,
  // RBAC missing) leaves the manager unready instead of working from an empty cache.
  // Page by page, each slimmed before the next is read: one response of 50 000 whole SecretSyncs
  // did not fit a 256 MB heap beside its parse (measured: bench/README.md, Scale). The pages come
  // from one snapshot of the collection; the watch starts at its resourceVersion.
  const listed: ListPromise<T> = async () => {
    const first = await listPage(undefined);
    const items = first.items.map(slim);
    for (let cont = continueOf(first); cont; ) {
      const page = await listPage(cont);
      for (const o of page.items) items.push(slim(o));
      cont = continueOf(page);
    }
    setImmediate(markSynced);
    return { ...first, items };
  };
  const informer = new ListWatch<T>(path, new SlimWatch(kc), listed, false);
  let stopped = false;
  let delay = 1_000;
  informer.on('connect', () => {
    delay = 1_000;
  });
  informer.on('error', (err: unknown) => {
    if (stopped) return; // stop() itself reports an abort
    const wait = delay;
    delay = Math.min(delay * 2, 30_000);
    log.warn('watch failed; restarting', { what, retryInMs: wait, error: String((err as Error)?.message ?? err) });
    setTimeout(() => {
      if (!stopped) void start();
    }, wait).unref();
  });
  const start = async () => {
    try {
      // Resolves even when the list failed (the 'error' handler above then retries).
      await informer.start();
    } catch (e) {
      log.warn('watch start failed', { what, error: String((e as Error)?.message ?? e) });
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
