// The providers' change notices (proto/changes.proto), watched while — and only while — this
// manager leads: a follower that watched would take the leader's events from the provider's
// source (a queue keeps them for whoever watches) and act on none. One stream per provider socket.
// A stream that fails is reopened with exponential backoff and jitter (1 s doubling to 60 s); a
// provider without the service (UNIMPLEMENTED) is asked again rarely, or when its socket is made
// anew. Notices only enqueue SecretSyncs: rotations (polling) go on whatever the streams do, so a
// broken stream never fails a sync.
import {
  errorMessage,
  statusName,
  type ChangeNotice,
  type ChangeState,
  type ProviderCallError,
  type WatchChangesOptions,
} from '@secret-store-sync/proto';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';
import { CHANGE_LOGS } from './messages.js';
import type { Metrics } from './metrics.js';
import { Backoff } from './queue.js';

export interface StreamTiming {
  /** The first retry's delay, doubled per failure up to `capMs` (±20 % jitter). */
  baseMs: number;
  capMs: number;
  /** A stream open this long was healthy: its failure retries from `baseMs` again. */
  stableMs: number;
  /** How long until a provider that answered UNIMPLEMENTED is asked again (sooner if its socket is made anew). */
  unimplementedMs: number;
  /** A stream that sends no State this long after opening is not up: it is ended and retried. */
  firstStateMs: number;
}

export const STREAM_TIMING: StreamTiming = {
  baseMs: 1_000,
  capMs: 60_000,
  stableMs: 30_000,
  unimplementedMs: 5 * 60_000,
  firstStateMs: 10_000,
};

export interface ChangeStreamsOptions {
  /** Opens a provider's stream: resolves when aborted, rejects when it fails (ProviderClient.watchChanges). */
  watch(provider: string, opts: WatchChangesOptions): Promise<void>;
  onChanged(provider: string, notice: ChangeNotice): void;
  log: Logger;
  metrics: Pick<Metrics, 'changeStreamUp' | 'changeSourceReceiving' | 'changeNotices'>;
  timing?: Partial<StreamTiming>;
  /** A monotonic clock in milliseconds. */
  now?: () => number;
}

interface Stream {
  provider: string;
  /** The open attempt, until it ends. */
  open?: AbortController;
  /** Set when the attempt was ended for sending nothing. */
  silent?: NodeJS.Timeout;
  /** The wait before the next attempt. */
  retry?: NodeJS.Timeout;
  up: boolean;
  unimplemented: boolean;
  /** What the log last said of the stream, so each change is said once. */
  said?: 'up' | 'down' | 'unimplemented';
  state?: ChangeState;
}

interface LogLine {
  what: NonNullable<Stream['said']>;
  level: 'info' | 'warn';
  message: string;
}

/**
 * Longest provider text kept for a log line: the provider is not trusted to be brief, but its
 * advice must fit (provider-azure's queue Forbidden text, with a queue URL and an identity, runs
 * past 300 characters and ends with the part an operator needs).
 */
const MAX_TEXT = 512;

export class ChangeStreams {
  private readonly streams = new Map<string, Stream>();
  private running = false;
  private readonly t: StreamTiming;
  private readonly backoff: Backoff;
  private readonly now: () => number;

  constructor(private readonly o: ChangeStreamsOptions) {
    this.t = { ...STREAM_TIMING, ...o.timing };
    this.backoff = new Backoff(this.t.baseMs, this.t.capMs);
    this.now = o.now ?? (() => performance.now());
  }

  /** Watches these providers, and those whose socket appears later (this manager now leads). */
  start(providers: Iterable<string>): void {
    if (this.running) return;
    this.running = true;
    for (const provider of providers) this.appeared(provider);
  }

  /** A provider's socket appeared or was made anew (a restart): watch it now, whatever wait it was in. */
  appeared(provider: string): void {
    if (!this.running) return;
    let s = this.streams.get(provider);
    if (!s) {
      this.streams.set(provider, (s = { provider, up: false, unimplemented: false }));
      this.setDown(s);
    }
    // Connecting or open: a provider that restarted ends that stream, and it is reopened then.
    if (s.open) return;
    clearTimeout(s.retry);
    s.retry = undefined;
    this.backoff.reset(provider);
    this.open(s);
  }

  /** Ends every stream and opens none until `start` (the lease is lost, or the manager stops). */
  stop(): void {
    this.running = false;
    for (const s of this.streams.values()) {
      clearTimeout(s.retry);
      clearTimeout(s.silent);
      s.open?.abort();
      s.open = undefined;
      this.setDown(s);
    }
    this.streams.clear();
  }

  /** Providers whose stream is up now. */
  up(): string[] {
    return [...this.streams.values()].filter((s) => s.up).map((s) => s.provider);
  }

  private open(s: Stream): void {
    const ctl = new AbortController();
    s.open = ctl;
    const openedAt = this.now();
    s.silent = setTimeout(() => ctl.abort(), this.t.firstStateMs);
    s.silent.unref();
    const { provider } = s;
    this.o
      .watch(provider, {
        signal: ctl.signal,
        onState: (state) => this.onState(s, state),
        onChanged: (notice) => {
          this.o.metrics.changeNotices.inc({ provider });
          this.o.onChanged(provider, notice);
        },
      })
      .then(
        () => this.ended(s, ctl, { lived: this.now() - openedAt }),
        (err: unknown) => this.ended(s, ctl, { lived: this.now() - openedAt, err }),
      );
  }

  private onState(s: Stream, state: ChangeState): void {
    if (!s.open) return;
    clearTimeout(s.silent);
    if (!s.up) {
      s.up = true;
      this.o.metrics.changeStreamUp.set({ provider: s.provider }, 1);
      this.say(s, { what: 'up', level: 'info', message: CHANGE_LOGS.streamOpen });
    }
    this.o.metrics.changeSourceReceiving.set({ provider: s.provider }, state.receiving ? 1 : 0);
    const before = s.state;
    s.state = state;
    if (before && before.receiving === state.receiving && before.reason === state.reason) return;
    this.o.log[state.receiving ? 'info' : 'warn'](state.receiving ? CHANGE_LOGS.receiving : CHANGE_LOGS.notReceiving, {
      provider: s.provider,
      ...(state.reason ? { reason: state.reason.slice(0, MAX_TEXT) } : {}),
      ...(state.message ? { providerMessage: state.message.slice(0, MAX_TEXT) } : {}),
    });
  }

  /** The attempt ended: stopped (nothing to do), or failed, silent or closed by the provider (retried). */
  private ended(s: Stream, ctl: AbortController, o: { lived: number; err?: unknown }): void {
    clearTimeout(s.silent);
    if (!this.running || s.open !== ctl) return;
    s.open = undefined;
    this.setDown(s);
    const code = o.err === undefined ? undefined : statusName(Number((o.err as ProviderCallError).code));
    if (code === 'UNIMPLEMENTED') {
      s.unimplemented = true;
      this.say(s, { what: 'unimplemented', level: 'info', message: CHANGE_LOGS.unsupported });
      return this.retryAfter(s, this.t.unimplementedMs);
    }
    s.unimplemented = false;
    if (o.lived >= this.t.stableMs) this.backoff.reset(s.provider);
    const delay = this.backoff.next(s.provider);
    const reason = (o.err as ProviderCallError | undefined)?.reason;
    const why =
      o.err !== undefined
        ? {
            code,
            error: errorMessage(o.err).slice(0, MAX_TEXT),
            ...(reason ? { reason: reason.slice(0, MAX_TEXT) } : {}),
          }
        : { code: ctl.signal.aborted ? 'NoState' : 'EndedByProvider' };
    this.say(
      s,
      { what: 'down', level: 'warn', message: CHANGE_LOGS.streamEnded },
      { ...why, retryInSeconds: Math.round(delay / 100) / 10 },
    );
    this.retryAfter(s, delay);
  }

  private retryAfter(s: Stream, delayMs: number): void {
    s.retry = setTimeout(() => {
      s.retry = undefined;
      if (this.running && this.streams.get(s.provider) === s) this.open(s);
    }, delayMs);
    s.retry.unref();
  }

  private setDown(s: Stream): void {
    s.up = false;
    s.state = undefined;
    this.o.metrics.changeStreamUp.set({ provider: s.provider }, 0);
    this.o.metrics.changeSourceReceiving.set({ provider: s.provider }, 0);
  }

  /** Logs a change of the stream's condition once; repeats of the same go to debug. */
  private say(s: Stream, line: LogLine, fields: Record<string, unknown> = {}): void {
    this.o.log[s.said === line.what ? 'debug' : line.level](line.message, { provider: s.provider, ...fields });
    s.said = line.what;
  }
}
