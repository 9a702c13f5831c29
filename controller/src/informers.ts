// client-node informers that keep running: an informer stops for good on any error but a 410, so
// this restarts it with backoff (it relists, and survives an apiserver restart). The informer's
// cache answers lookups by namespace and name.
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise } from '@kubernetes/client-node';
import type { Logger } from './log.js';

export interface Supervised<T extends KubernetesObject> {
  informer: Informer<T>;
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
  /** Resolves after the first successful list, once the cache holds it. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

export function supervise<T extends KubernetesObject>(kc: KubeConfig, path: string, listFn: ListPromise<T>, log: Logger, what: string): Supervised<T> {
  let markSynced!: () => void;
  const synced = new Promise<void>((r) => (markSynced = r));
  // Synced means listed: the informer fills its cache right after this list returns, so the cache
  // is complete by the next turn of the event loop. A failed list (the CRD not yet established,
  // RBAC missing) leaves the manager unready instead of working from an empty cache.
  const listed: ListPromise<T> = async () => {
    const result = await listFn();
    setImmediate(markSynced);
    return result;
  };
  const informer = makeInformer<T>(kc, path, listed);
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
