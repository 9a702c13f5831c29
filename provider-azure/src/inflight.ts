// Identical reads in flight joined into one request, which is cancelled only once every caller
// waiting for it has gone.
interface InFlight {
  promise: Promise<unknown>;
  /** Aborts the shared request once every caller waiting for it has gone. */
  controller: AbortController;
  callers: number;
  settled: boolean;
}

export class InFlightReads {
  private readonly reads = new Map<string, InFlight>();

  has(key: string): boolean {
    return this.reads.has(key);
  }

  /**
   * The result of `fetch` for `key`, joining the call in flight for it if there is one. A caller
   * stops waiting when its own `signal` aborts; `fetch`'s signal aborts when no caller is left.
   */
  async join<T>(key: string, fetch: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const shared = this.reads.get(key) ?? this.start(key, fetch);
    shared.callers++;
    try {
      return (await raceAbort(shared.promise, signal)) as T;
    } finally {
      if (--shared.callers === 0 && !shared.settled) {
        shared.controller.abort(Object.assign(new Error('every caller of this read has gone'), { name: 'AbortError' }));
        if (this.reads.get(key) === shared) this.reads.delete(key);
      }
    }
  }

  private start(key: string, fetch: (signal: AbortSignal) => Promise<unknown>): InFlight {
    const controller = new AbortController();
    const created: InFlight = { controller, callers: 0, settled: false, promise: Promise.resolve() };
    created.promise = fetch(controller.signal).finally(() => {
      created.settled = true;
      if (this.reads.get(key) === created) this.reads.delete(key);
    });
    this.reads.set(key, created);
    return created;
  }
}

/** `p`, or the abort reason of `signal` if that comes first. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
