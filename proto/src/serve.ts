// One way to serve a provider: a typed Mount handler behind the proto, on a unix socket with sane
// hygiene (a stale socket is removed, a live one is never stolen, mode 0600), the gRPC health
// service, and a graceful stop that lets in-flight Mounts finish within a bound.
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServiceError,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { socketPath } from './endpoint.js';
import { errorMessage, ProviderError, statusName } from './errors.js';
import type { MountRequest__Output } from './generated/v1alpha1/MountRequest.js';
import type { MountResponse } from './generated/v1alpha1/MountResponse.js';
import type { VersionRequest__Output } from './generated/v1alpha1/VersionRequest.js';
import type { VersionResponse } from './generated/v1alpha1/VersionResponse.js';
import { changesServer, type ChangeSource } from './changes.js';
import { changesService, providerService } from './load.js';
import {
  API_VERSION,
  CHANGE_KEY,
  CHANGE_KEYS_METADATA_KEY,
  DEFAULT_MAX_MESSAGE_BYTES,
  FRESH_READ_METADATA_KEY,
  MAX_TRAILER_BYTES,
  OBJECT_EXPIRY_METADATA_KEY,
  PARTIAL_FAILURES_METADATA_KEY,
  encodeChangeKeys,
  encodeExpiry,
  encodeFailures,
  type ObjectFailure,
} from './wire.js';

export interface ObjectVersionEntry {
  id: string;
  version: string;
}

/** A MountRequest with its JSON fields parsed and checked. */
export interface ParsedMountRequest {
  /** SecretProviderClass parameters plus the csi.storage.k8s.io/* keys. */
  attributes: Record<string, string>;
  /** Node-publish secret data; empty when the caller sent none. */
  secrets: Record<string, string>;
  /** Default file mode (e.g. 0o644). */
  permission: number;
  targetPath: string;
  currentObjectVersions: ObjectVersionEntry[];
}

export interface ProviderFile {
  /** Relative, "/"-separated, without "..". */
  path: string;
  contents: Uint8Array | string;
  /** Defaults to the request's permission. */
  mode?: number;
}

export interface MountResult {
  files: ProviderFile[];
  objectVersions: ObjectVersionEntry[];
  /**
   * Objects that failed while the rest were returned (partial sync). Sent as trailing metadata
   * (PARTIAL_FAILURES_METADATA_KEY, JSON), so the response stays the upstream message.
   */
  failures?: ObjectFailure[];
  /**
   * When objects expire, by object version id (the ids of `objectVersions`): a Key Vault secret's
   * `exp`, a certificate's notAfter. Sent as trailing metadata (OBJECT_EXPIRY_METADATA_KEY, JSON
   * map of id → RFC 3339), so the response stays the upstream message; a provider that sends none
   * changes nothing for the manager.
   */
  expiresOn?: Record<string, Date>;
  /**
   * The change key of each object, by object version id, that this provider's change notices will
   * name (changes.proto). Sent as trailing metadata (CHANGE_KEYS_METADATA_KEY); only meaningful
   * from a provider that serves `changes`.
   */
  changeKeys?: Record<string, string>;
}

export interface CallContext {
  requestId: string;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
  /** The caller asked for a read of the store now (FRESH_READ_METADATA_KEY): share no earlier read. */
  fresh: boolean;
}

export interface Provider {
  runtimeName: string;
  runtimeVersion: string;
  mount(request: ParsedMountRequest, ctx: CallContext): Promise<MountResult>;
  /** Change notices (changes.proto), when the provider has them; without, callers only poll. */
  changes?: ChangeSource;
}

export interface CallEvent {
  method: 'Mount' | 'Version';
  requestId: string;
  /** gRPC status name, e.g. "OK", "NOT_FOUND". */
  code: string;
  durationMs: number;
  error?: ProviderError;
}

export interface ServeOptions {
  endpoint: string;
  /** How long a stop waits for in-flight Mounts before cancelling them. */
  shutdownGraceMs?: number;
  maxMessageBytes?: number;
  /** Called after every call, for logs and metrics. */
  onCall?: (event: CallEvent) => void;
}

export interface RunningProvider {
  socket: string;
  inFlight(): number;
  /** Stops accepting, lets in-flight calls finish (bounded), removes the socket. */
  stop(): Promise<void>;
}

export function parseMountRequest(req: MountRequest__Output): ParsedMountRequest {
  const attributes = parseStringMap('attributes', req.attributes, false);
  const secrets = parseStringMap('secrets', req.secrets, true);
  let permission = 0o644;
  if (req.permission.trim() !== '') {
    const n = Number(req.permission);
    if (!Number.isInteger(n) || n < 0 || n > 0o7777) {
      throw new ProviderError(
        'InvalidArgument',
        `permission must be a JSON number of a file mode in decimal (e.g. "420" for 0644), got '${req.permission.slice(0, 40)}'`,
      );
    }
    permission = n;
  }
  return {
    attributes,
    secrets,
    permission,
    targetPath: req.targetPath,
    currentObjectVersions: req.currentObjectVersion.map((o) => ({ id: o.id, version: o.version })),
  };
}

function parseStringMap(field: string, text: string, allowEmpty: boolean): Record<string, string> {
  const t = text.trim();
  if (allowEmpty && (t === '' || t === 'null')) return {};
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch (e) {
    throw new ProviderError('InvalidArgument', `${field} is not valid JSON: ${errorMessage(e)}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new ProviderError('InvalidArgument', `${field} must be a JSON object of strings`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw new ProviderError(
        'InvalidArgument',
        `${field}: the value of '${k}' must be a string, got ${v === null ? 'null' : typeof v}`,
      );
  }
  return value as Record<string, string>;
}

/** Checks what a provider returns, so a provider bug shows as a clear error rather than bad files. */
export function toMountResponse(result: MountResult, defaultMode: number): MountResponse {
  const seen = new Set<string>();
  for (const f of result.files) {
    const p = f.path;
    if (!p || p.startsWith('/') || p.split(/[\\/]/).includes('..') || p.includes('\0')) {
      throw new ProviderError('Internal', `provider returned an unsafe file path '${p}'`);
    }
    if (seen.has(p)) throw new ProviderError('Internal', `provider returned the file path '${p}' twice`);
    seen.add(p);
  }
  return {
    objectVersion: result.objectVersions,
    files: result.files.map((f) => ({
      path: f.path,
      mode: f.mode ?? defaultMode,
      contents: typeof f.contents === 'string' ? Buffer.from(f.contents, 'utf8') : Buffer.from(f.contents),
    })),
  };
}

/** The optional trailers of a Mount's answer; one a manager would refuse fails the Mount here. */
function trailersOf(result: MountResult): Metadata {
  const trailer = new Metadata();
  if (result.failures?.length) trailer.set(PARTIAL_FAILURES_METADATA_KEY, encodeFailures(result.failures));
  if (result.expiresOn && Object.keys(result.expiresOn).length) {
    const expiry = encodeExpiry(result.expiresOn);
    // Said here, where the provider's author sees it, rather than refused by the manager.
    if (expiry.length > MAX_TRAILER_BYTES)
      throw new ProviderError(
        'Internal',
        `the expiry trailer would hold ${expiry.length} bytes, more than the ${MAX_TRAILER_BYTES} a manager accepts`,
        'TrailerTooLarge',
      );
    trailer.set(OBJECT_EXPIRY_METADATA_KEY, expiry);
  }
  if (result.changeKeys && Object.keys(result.changeKeys).length)
    trailer.set(CHANGE_KEYS_METADATA_KEY, checkedChangeKeys(result.changeKeys));
  return trailer;
}

/** The change-keys trailer, refused here (where the provider's author sees it) when a manager would refuse it. */
function checkedChangeKeys(keys: Record<string, string>): string {
  const bad = Object.entries(keys).find(([id, k]) => !id || !CHANGE_KEY.test(k));
  if (bad)
    throw new ProviderError(
      'Internal',
      `change key '${bad[1].slice(0, 40)}' of object '${bad[0].slice(0, 80)}' is not 1 to 128 printable ASCII characters`,
      'MalformedTrailer',
    );
  const raw = encodeChangeKeys(keys);
  if (raw.length > MAX_TRAILER_BYTES)
    throw new ProviderError(
      'Internal',
      `the change-keys trailer would hold ${raw.length} bytes, more than the ${MAX_TRAILER_BYTES} a manager accepts`,
      'TrailerTooLarge',
    );
  return raw;
}

async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live)
    throw new ProviderError(
      'FailedPrecondition',
      `another server is listening on ${path}; refusing to take its socket`,
    );
  unlinkSync(path);
}

function toServiceError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  return new ProviderError('Internal', `provider failed: ${errorMessage(err)}`, undefined, {
    cause: err,
  });
}

export async function serve(provider: Provider, opts: ServeOptions): Promise<RunningProvider> {
  const path = socketPath(opts.endpoint);
  mkdirSync(dirname(path), { recursive: true });
  await removeStaleSocket(path);
  const maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new Server({ 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes });
  const health = new HealthImplementation({
    '': 'SERVING',
    'v1alpha1.CSIDriverProvider': 'SERVING',
    ...(provider.changes ? { 'secretstoresync.changes.v1alpha1.ObjectChanges': 'SERVING' } : {}),
  });
  health.addToServer(server);
  const changes = provider.changes ? changesServer(provider.changes) : undefined;
  if (changes) server.addService(changesService, { Watch: changes.Watch });
  const controllers = new Set<AbortController>();

  const report = (method: CallEvent['method'], requestId: string, started: number, error?: ProviderError) =>
    opts.onCall?.({
      method,
      requestId,
      code: error ? statusName(error.grpcCode) : 'OK',
      durationMs: Date.now() - started,
      ...(error ? { error } : {}),
    });

  server.addService(providerService, {
    Version(_call: ServerUnaryCall<VersionRequest__Output, VersionResponse>, callback: sendUnaryData<VersionResponse>) {
      const started = Date.now();
      callback(null, {
        version: API_VERSION,
        runtimeName: provider.runtimeName,
        runtimeVersion: provider.runtimeVersion,
      });
      report('Version', '', started);
    },
    Mount(call: ServerUnaryCall<MountRequest__Output, MountResponse>, callback: sendUnaryData<MountResponse>) {
      const started = Date.now();
      const requestId = randomUUID();
      const ctl = new AbortController();
      controllers.add(ctl);
      call.on('cancelled', () => ctl.abort(new ProviderError('DeadlineExceeded', 'the caller cancelled the Mount')));
      void (async () => {
        try {
          const request = parseMountRequest(call.request);
          const fresh = call.metadata.get(FRESH_READ_METADATA_KEY)[0] === '1';
          const result = await provider.mount(request, { requestId, signal: ctl.signal, fresh });
          const trailer = trailersOf(result);
          callback(null, toMountResponse(result, request.permission), trailer);
          report('Mount', requestId, started);
        } catch (err) {
          const e = toServiceError(err);
          callback(e.toServiceError() as Partial<ServiceError>);
          report('Mount', requestId, started, e);
        } finally {
          controllers.delete(ctl);
        }
      })();
    },
  });

  // The socket is created by bind; a tight umask makes it owner-only from its first moment.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);

  let stopping: Promise<void> | undefined;
  return {
    socket: path,
    inFlight: () => controllers.size,
    stop() {
      stopping ??= (async () => {
        health.setStatus('', 'NOT_SERVING');
        changes?.endAll();
        const grace = opts.shutdownGraceMs ?? 10_000;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            for (const c of controllers) c.abort(new ProviderError('Unavailable', 'the provider is shutting down'));
            server.forceShutdown();
            resolve();
          }, grace);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        if (existsSync(path)) unlinkSync(path);
      })();
      return stopping;
    },
  };
}

export { status };
