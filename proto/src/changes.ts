// The optional ObjectChanges service (proto/changes.proto): the provider's side, and the shapes
// both sides share. A provider that knows when its store changes gives `serve` a ChangeSource; the
// kit streams its state and notices to every caller that watches, and ends each stream that cannot
// keep up rather than buffering without bound (the caller reconnects and polls meanwhile).
import { Metadata, status, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import type { WatchEvent } from './generated/secretstoresync/changes/v1alpha1/WatchEvent.js';
import type { WatchRequest__Output } from './generated/secretstoresync/changes/v1alpha1/WatchRequest.js';
import { CHANGE_KEY } from './wire.js';

/** Whether the provider receives change events from its store right now, and if not, why. */
export interface ChangeState {
  receiving: boolean;
  /** A short reason when not receiving, e.g. "NotConfigured", "QueueUnreachable", "Forbidden". */
  reason?: string;
  /** For people; never a secret or a token. */
  message?: string;
}

/** Objects whose stored value may have changed, by the change keys their Mounts named. */
export interface ChangeNotice {
  keys: string[];
  /** For logs: "NewVersion", "NearExpiry", "Expired", … */
  kind: string;
}

export interface ChangeListener {
  state(state: ChangeState): void;
  changed(notice: ChangeNotice): void;
}

/**
 * A provider's change events. `watch` attaches a listener until the returned function is called;
 * a source may pull its store only while a listener is attached, so that events wait in the store
 * (a queue keeps them) for whoever watches next instead of being taken by a caller that ignores them.
 */
export interface ChangeSource {
  current(): ChangeState;
  watch(listener: ChangeListener): () => void;
}

/** At most this many keys in one Changed message; a larger notice is split. */
export const MAX_KEYS_PER_NOTICE = 1024;
/** A stream with this many events unsent is ended with RESOURCE_EXHAUSTED: its caller is not reading. */
export const MAX_UNSENT_EVENTS = 4096;

export interface ChangesServer {
  Watch(call: ServerWritableStream<WatchRequest__Output, WatchEvent>): void;
  /** Ends every open stream (the provider is stopping), so a graceful stop does not wait for them. */
  endAll(): void;
  watchers(): number;
}

export function changesServer(source: ChangeSource): ChangesServer {
  const open = new Set<ServerWritableStream<WatchRequest__Output, WatchEvent>>();
  /** Streams being ended: nothing more is written to them. */
  const ended = new WeakSet<ServerWritableStream<WatchRequest__Output, WatchEvent>>();
  return {
    watchers: () => open.size,
    endAll() {
      for (const call of [...open]) fail(call, status.UNAVAILABLE, 'the provider is shutting down');
    },
    Watch(call) {
      if (call.request.version !== '' && call.request.version !== 'v1alpha1') {
        fail(
          call,
          status.INVALID_ARGUMENT,
          `ObjectChanges v1alpha1 is served, not '${call.request.version.slice(0, 40)}'`,
        );
        return;
      }
      open.add(call);
      const send = (event: WatchEvent) => {
        if (!open.has(call) || ended.has(call)) return;
        if (call.writableLength >= MAX_UNSENT_EVENTS) {
          fail(
            call,
            status.RESOURCE_EXHAUSTED,
            `${MAX_UNSENT_EVENTS} change events are unsent: the caller is not reading`,
          );
          return;
        }
        call.write(event);
      };
      // The contract: a State first.
      send({ state: toState(source.current()) });
      const unwatch = source.watch({
        state: (s) => send({ state: toState(s) }),
        changed: (n) => {
          const keys = n.keys.filter((k) => CHANGE_KEY.test(k));
          for (let i = 0; i < keys.length; i += MAX_KEYS_PER_NOTICE)
            send({ changed: { keys: keys.slice(i, i + MAX_KEYS_PER_NOTICE), kind: n.kind } });
        },
      });
      const finish = () => {
        if (!open.delete(call)) return;
        unwatch();
      };
      for (const e of ['cancelled', 'close', 'error', 'finish']) call.on(e, finish);
    },
  };

  function fail(call: ServerWritableStream<WatchRequest__Output, WatchEvent>, code: status, details: string): void {
    ended.add(call);
    call.emit('error', { code, details, metadata: new Metadata() } satisfies Partial<ServiceError>);
  }
}

function toState(s: ChangeState): WatchEvent['state'] {
  return { receiving: s.receiving, reason: s.reason ?? '', message: s.message ?? '' };
}
