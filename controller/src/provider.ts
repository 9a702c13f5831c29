// Calls providers over <provider-dir>/<provider>.sock with a deadline, one client per provider.
// A missing socket, a hung or crashed provider and an error reply all become a provider failure
// with the provider's own message — never a stalled worker.
import {
  buildMountRequest,
  ProviderClient,
  statusName,
  type MountAnswerTrailers,
  type MountRequestInput,
  type MountResponse__Output,
  type ProviderCallError,
  type WatchChangesOptions,
} from '@secret-store-sync/proto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Metrics } from './metrics.js';
import { FAILURES } from './messages.js';
import { SyncError } from './reasons.js';

/** A SecretProviderClass's spec.provider: the name of its socket, `<provider-dir>/<name>.sock`. */
export const PROVIDER_NAME = /^[a-zA-Z0-9_-]{1,30}$/;

/** A Mount's answer with the provider's optional expiry and change-key trailers (see the README's provider contract). */
export type MountAnswer = MountResponse__Output & Pick<MountAnswerTrailers, 'expiry' | 'changeKeys'>;

export interface MountInput {
  provider: string;
  request: MountRequestInput;
  /** Ask the provider to read its store now, sharing nothing it read before (FRESH_READ_METADATA_KEY). */
  fresh?: boolean;
}

export class Providers {
  private readonly clients = new Map<string, ProviderClient>();

  constructor(
    private readonly dir: string,
    private readonly timeoutMs: number,
    private readonly maxMessageBytes: number,
    private readonly metrics: Metrics,
  ) {}

  checkName(provider: string): void {
    if (!PROVIDER_NAME.test(provider)) throw new SyncError(FAILURES.providerName({ provider }));
  }

  async mount(input: MountInput): Promise<MountAnswer> {
    this.checkName(input.provider);
    const socket = join(this.dir, `${input.provider}.sock`);
    // Every failure names the provider and its socket, so the status's advice points at the right one.
    const where = { provider: input.provider, socket };
    if (!existsSync(socket)) {
      throw new SyncError(FAILURES.providerNotRunning({ provider: input.provider, socket }), {
        ...where,
        missing: { kind: 'provider', name: input.provider },
      });
    }
    const client = this.client(input.provider);
    const stop = this.metrics.providerCalls.startTimer({ provider: input.provider });
    try {
      const res = await client.mount(buildMountRequest(input.request), this.timeoutMs, { fresh: input.fresh ?? false });
      // An answer carrying an error code is a failure too, whatever the gRPC status said.
      stop({ code: res.error?.code ? 'ERROR_IN_RESPONSE' : 'OK' });
      if (res.error?.code)
        throw new SyncError(FAILURES.providerErrorCode({ provider: input.provider, code: res.error.code }), {
          ...where,
          upstream: { code: res.error.code },
        });
      if (res.objectVersion.length === 0)
        throw new SyncError(FAILURES.providerNoVersions({ provider: input.provider }), where);
      return res;
    } catch (e) {
      if (e instanceof SyncError) throw e;
      const err = e as ProviderCallError;
      const code = typeof err.code === 'number' ? statusName(err.code) : 'UNKNOWN';
      stop({ code });
      const said = { provider: input.provider, ...(err.reason ? { reason: err.reason } : {}) };
      throw new SyncError(
        code === 'DEADLINE_EXCEEDED'
          ? FAILURES.providerTimedOut({ ...said, seconds: this.timeoutMs / 1000 })
          : FAILURES.providerFailed({ ...said, code, detail: (err.details || err.message).replace(/[.\s]+$/, '') }),
        {
          cause: e,
          ...where,
          upstream: { code, ...(err.reason ? { reason: err.reason } : {}) },
          ...(code === 'DEADLINE_EXCEEDED' ? { timedOut: `provider '${input.provider}'` } : {}),
        },
      );
    }
  }

  /** The provider's change notices (changes.proto), on the same client as its Mounts; see ProviderClient.watchChanges. */
  watchChanges(provider: string, opts: WatchChangesOptions): Promise<void> {
    this.checkName(provider);
    return this.client(provider).watchChanges(opts);
  }

  private client(provider: string): ProviderClient {
    let client = this.clients.get(provider);
    if (!client) {
      client = new ProviderClient(`unix://${join(this.dir, `${provider}.sock`)}`, {
        maxMessageBytes: this.maxMessageBytes,
      });
      this.clients.set(provider, client);
    }
    return client;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
