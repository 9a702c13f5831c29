// Notices provider sockets appearing in the provider directory, so SecretSyncs waiting for a
// provider that starts after them sync at once instead of at their next retry (the backoff reaches
// 5 minutes). fs.watch (inotify) tells at once; a periodic scan catches what it misses (a watch
// that could not start or failed, a queue that overflowed, a file system that sends no events).
// Events for one socket are debounced: binding a socket is several directory changes.
import { readdirSync, watch, existsSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { PROVIDER_NAME } from './provider.js';

export interface ProviderSocketsOptions {
  dir: string;
  /** A socket `<provider>.sock` appeared (or was made anew, as a restarted provider does). */
  onAppear(provider: string): void;
  /** How often the directory is scanned besides the watch. */
  scanMs?: number;
  debounceMs?: number;
}

export class ProviderSockets {
  private watcher?: FSWatcher;
  private scanTimer?: NodeJS.Timeout;
  /** Providers with a socket at the last look. */
  private present = new Set<string>();
  private readonly debounced = new Map<string, NodeJS.Timeout>();

  constructor(private readonly o: ProviderSocketsOptions) {}

  start(): void {
    this.present = this.scan();
    this.watch();
    this.scanTimer = setInterval(() => this.rescan(), this.o.scanMs ?? 10_000);
    this.scanTimer.unref();
  }

  /** The providers whose socket was there at the last look. */
  providers(): string[] {
    return [...this.present];
  }

  /** Whether the provider's socket is there now. */
  has(provider: string): boolean {
    return existsSync(join(this.o.dir, `${provider}.sock`));
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.scanTimer) clearInterval(this.scanTimer);
    for (const t of this.debounced.values()) clearTimeout(t);
    this.debounced.clear();
  }

  private watch(): void {
    try {
      this.watcher = watch(this.o.dir, { persistent: false }, (_event, file) => this.changed(file));
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined; // the next scan starts another
      });
    } catch {
      this.watcher = undefined; // no directory yet: the scans look for it
    }
  }

  private changed(file: string | Buffer | null): void {
    const provider = providerOf(String(file ?? ''));
    if (!provider) return;
    clearTimeout(this.debounced.get(provider));
    const t = setTimeout(() => {
      this.debounced.delete(provider);
      if (this.has(provider)) {
        this.present.add(provider);
        this.o.onAppear(provider);
      } else this.present.delete(provider);
    }, this.o.debounceMs ?? 250);
    t.unref();
    this.debounced.set(provider, t);
  }

  private rescan(): void {
    if (!this.watcher) this.watch();
    const now = this.scan();
    for (const provider of now) if (!this.present.has(provider)) this.o.onAppear(provider);
    this.present = now;
  }

  private scan(): Set<string> {
    try {
      return new Set(
        readdirSync(this.o.dir)
          .map(providerOf)
          .filter((p): p is string => p !== undefined),
      );
    } catch {
      return new Set();
    }
  }
}

function providerOf(file: string): string | undefined {
  if (!file.endsWith('.sock')) return undefined;
  const name = file.slice(0, -'.sock'.length);
  return PROVIDER_NAME.test(name) ? name : undefined;
}

/**
 * Which SecretSyncs wait for which provider's socket: each at most once, so the map is bounded by
 * the SecretSyncs the manager has.
 */
export class ProviderWaiters {
  private readonly byProvider = new Map<string, Set<string>>();
  private readonly byKey = new Map<string, string>();

  /** `provider`: what the key's last sync found without a socket; undefined: it waits for none. */
  set(key: string, provider: string | undefined): void {
    const before = this.byKey.get(key);
    if (before === provider) return;
    if (before !== undefined) {
      this.byKey.delete(key);
      const keys = this.byProvider.get(before)!;
      keys.delete(key);
      if (keys.size === 0) this.byProvider.delete(before);
    }
    if (provider === undefined) return;
    this.byKey.set(key, provider);
    const keys = this.byProvider.get(provider);
    if (keys) keys.add(key);
    else this.byProvider.set(provider, new Set([key]));
  }

  /** The keys waiting for the provider, no longer waiting. */
  take(provider: string): string[] {
    const keys = [...(this.byProvider.get(provider) ?? [])];
    for (const key of keys) this.set(key, undefined);
    return keys;
  }

  get size(): number {
    return this.byKey.size;
  }
}
