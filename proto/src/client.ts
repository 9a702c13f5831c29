// A typed client for the provider API over a unix socket (the manager's side of the contract).
import {
  credentials,
  InterceptingCall,
  Metadata,
  status,
  type ClientUnaryCall,
  type Interceptor,
  type ServiceError,
} from '@grpc/grpc-js';
import { socketPath } from './endpoint.js';
import { REASON_METADATA_KEY } from './errors.js';
import type { CSIDriverProviderClient } from './generated/v1alpha1/CSIDriverProvider.js';
import type { MountRequest } from './generated/v1alpha1/MountRequest.js';
import type { MountResponse__Output } from './generated/v1alpha1/MountResponse.js';
import type { VersionResponse__Output } from './generated/v1alpha1/VersionResponse.js';
import type { ObjectChangesClient } from './generated/secretstoresync/changes/v1alpha1/ObjectChanges.js';
import type { WatchEvent__Output } from './generated/secretstoresync/changes/v1alpha1/WatchEvent.js';
import { MAX_KEYS_PER_NOTICE, type ChangeNotice, type ChangeState } from './changes.js';
import { api, changesApi } from './load.js';
import {
  CHANGE_KEY,
  CHANGE_KEYS_METADATA_KEY,
  DEFAULT_MAX_MESSAGE_BYTES,
  FRESH_READ_METADATA_KEY,
  OBJECT_EXPIRY_METADATA_KEY,
  PARTIAL_FAILURES_METADATA_KEY,
  TrailerError,
  decodeChangeKeys,
  decodeExpiry,
  decodeFailures,
  type ObjectFailure,
} from './wire.js';

export interface ProviderCallError extends ServiceError {
  /** The upstream code the provider reported (AADSTS…, a Key Vault error code), if any. */
  reason?: string;
}

/**
 * How long after the response message its trailers may take. A server sends them together; an
 * HPACK field over 64 KiB makes Node's http2 client drop the connection's frames without failing
 * its calls, so without this the Mount would wait for its whole deadline.
 */
const TRAILER_GRACE_MS = 5_000;
/** The largest change-notice message taken: MAX_KEYS_PER_NOTICE keys of 128 characters fit well inside. */
const MAX_WATCH_MESSAGE_BYTES = 1024 * 1024;

export interface WatchChangesOptions {
  /** Aborting it ends the stream (the promise then resolves). */
  signal: AbortSignal;
  onState(state: ChangeState): void;
  onChanged(notice: ChangeNotice): void;
}

export interface MountAnswerTrailers {
  failures: ObjectFailure[];
  expiry?: { expiresOn: Record<string, Date>; dropped: number };
  changeKeys?: { keys: Record<string, string>; dropped: number };
}

/** HTTP/2 pings on a change stream: every `timeMs`, the stream failing (UNAVAILABLE) when one goes unanswered for `timeoutMs`. */
export interface Keepalive {
  timeMs: number;
  timeoutMs: number;
}

/**
 * 5.5 minutes: grpc-go servers answer pings more often than every 5 minutes (their default
 * keepalive.EnforcementPolicy.MinTime) with GOAWAY "too_many_pings", which would cut the stream of
 * every provider written in Go (the CSI driver's own are).
 */
export const CHANGE_KEEPALIVE: Keepalive = { timeMs: 330_000, timeoutMs: 20_000 };

export class ProviderClient {
  private client: CSIDriverProviderClient;
  private readonly connect: () => CSIDriverProviderClient;
  private readonly trailerGraceMs: number;
  private readonly endpoint: string;
  private changes: ObjectChangesClient | undefined;

  private readonly changeKeepalive: Keepalive;

  constructor(
    endpoint: string,
    opts: { maxMessageBytes?: number; trailerGraceMs?: number; changeKeepalive?: Keepalive } = {},
  ) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.trailerGraceMs = opts.trailerGraceMs ?? TRAILER_GRACE_MS;
    this.changeKeepalive = opts.changeKeepalive ?? CHANGE_KEEPALIVE;
    this.endpoint = endpoint;
    this.connect = () =>
      new api.v1alpha1.CSIDriverProvider(`unix:${socketPath(endpoint)}`, credentials.createInsecure(), {
        'grpc.max_receive_message_length': max,
        'grpc.max_send_message_length': max,
      });
    this.client = this.connect();
  }

  version(timeoutMs = 5_000): Promise<VersionResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.Version({ version: 'v1alpha1' }, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(withReason(err)) : resolve(res!),
      ),
    );
  }

  /**
   * Mount; `failures` lists objects a partial sync left out; `expiry` and `changeKeys` are the
   * provider's optional trailers (undefined when it sent none; `dropped` counts entries that were
   * not valid).
   * A trailer that is malformed, too large (MAX_TRAILER_BYTES) or never arrives fails the call
   * with an INTERNAL ProviderCallError whose `reason` names the fault.
   */
  mount(
    request: MountRequest,
    timeoutMs = 30_000,
    o: { fresh?: boolean } = {},
  ): Promise<MountResponse__Output & MountAnswerTrailers> {
    return new Promise((resolve, reject) => {
      let trailers: Metadata | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      let lost = false;
      // Sees the message and the trailers as they arrive, before the callback.
      const watch: Interceptor = (options, nextCall) =>
        new InterceptingCall(nextCall(options), {
          start: (metadata, _listener, next) =>
            next(metadata, {
              onReceiveMessage: (message, nextMessage) => {
                // `call` is set by then: messages arrive after Mount() has returned it.
                watchdog = setTimeout(() => ((lost = true), call.cancel()), this.trailerGraceMs);
                nextMessage(message);
              },
              onReceiveStatus: (s, nextStatus) => {
                clearTimeout(watchdog);
                trailers = s.metadata;
                nextStatus(s);
              },
            }),
        });
      const metadata = new Metadata();
      if (o.fresh) metadata.set(FRESH_READ_METADATA_KEY, '1');
      const call: ClientUnaryCall = this.client.Mount(
        request,
        metadata,
        { deadline: Date.now() + timeoutMs, interceptors: [watch] },
        (err, res) => {
          clearTimeout(watchdog);
          if (lost) {
            // That connection drops every later frame too: the next call gets a new one.
            this.client.close();
            this.client = this.connect();
            return reject(
              trailerFailure(
                new TrailerError(
                  '',
                  'TrailerLost',
                  `the provider's trailers did not arrive within ${this.trailerGraceMs / 1000} s of its answer (a trailer over 64 KiB is dropped by HTTP/2)`,
                ),
              ),
            );
          }
          if (err) return reject(withReason(err));
          try {
            const raw = trailers?.get(PARTIAL_FAILURES_METADATA_KEY)[0];
            const failures = raw === undefined ? [] : decodeFailures(String(raw));
            const exp = trailers?.get(OBJECT_EXPIRY_METADATA_KEY)[0];
            const keys = trailers?.get(CHANGE_KEYS_METADATA_KEY)[0];
            resolve({
              ...res!,
              failures,
              ...(exp !== undefined ? { expiry: decodeExpiry(String(exp)) } : {}),
              ...(keys !== undefined ? { changeKeys: decodeChangeKeys(String(keys)) } : {}),
            });
          } catch (e) {
            reject(e instanceof TrailerError ? trailerFailure(e) : e);
          }
        },
      );
    });
  }

  /**
   * Watches the provider's change notices (changes.proto) until `signal` aborts (resolves) or the
   * stream fails (rejects with a ProviderCallError: UNIMPLEMENTED from a provider without change
   * notices, UNAVAILABLE when it stops). Keys that are not valid change keys, and keys beyond
   * MAX_KEYS_PER_NOTICE in one message, are dropped: a notice only ever causes Mounts the caller
   * would make anyway.
   */
  watchChanges(opts: WatchChangesOptions): Promise<void> {
    this.changes ??= new changesApi.secretstoresync.changes.v1alpha1.ObjectChanges(
      `unix:${socketPath(this.endpoint)}`,
      credentials.createInsecure(),
      {
        'grpc.max_receive_message_length': MAX_WATCH_MESSAGE_BYTES,
        // The stream has no deadline: a provider that hangs (stopped, wedged) with the socket open
        // would leave the caller believing notices still come. Pings find it; only while a call is open.
        'grpc.keepalive_time_ms': this.changeKeepalive.timeMs,
        'grpc.keepalive_timeout_ms': this.changeKeepalive.timeoutMs,
        'grpc.keepalive_permit_without_calls': 0,
      },
    );
    const stream = this.changes.Watch({ version: 'v1alpha1' });
    return new Promise<void>((resolve, reject) => {
      const abort = () => stream.cancel();
      if (opts.signal.aborted) abort();
      opts.signal.addEventListener('abort', abort, { once: true });
      const done = (err?: ServiceError) => {
        opts.signal.removeEventListener('abort', abort);
        if (err && !(opts.signal.aborted && err.code === status.CANCELLED)) reject(withReason(err));
        else resolve();
      };
      stream.on('data', (event: WatchEvent__Output) => {
        if (event.state) {
          const { receiving, reason, message } = event.state;
          opts.onState({ receiving, ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
        } else if (event.changed) {
          const keys = event.changed.keys.slice(0, MAX_KEYS_PER_NOTICE).filter((k) => CHANGE_KEY.test(k));
          if (keys.length) opts.onChanged({ keys, kind: event.changed.kind.slice(0, 64) });
        }
      });
      stream.on('error', (err: ServiceError) => done(err));
      stream.on('end', () => done());
    });
  }

  close(): void {
    this.client.close();
    this.changes?.close();
  }
}

function withReason(err: ServiceError): ProviderCallError {
  const reason = err.metadata?.get(REASON_METADATA_KEY)[0];
  return Object.assign(err, reason ? { reason: String(reason) } : {});
}

/** A trailer the manager cannot take, as a failed call: INTERNAL, with the fault as its reason. */
function trailerFailure(e: TrailerError): ProviderCallError {
  return Object.assign(new Error(e.message, { cause: e }), {
    code: status.INTERNAL,
    details: e.message,
    metadata: new Metadata(),
    reason: e.reason,
  });
}
