// A typed client for the provider API over a unix socket (the manager's side of the contract).
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { socketPath } from './endpoint.js';
import { REASON_METADATA_KEY } from './errors.js';
import type { CSIDriverProviderClient } from './generated/v1alpha1/CSIDriverProvider.js';
import type { MountRequest } from './generated/v1alpha1/MountRequest.js';
import type { MountResponse__Output } from './generated/v1alpha1/MountResponse.js';
import type { VersionResponse__Output } from './generated/v1alpha1/VersionResponse.js';
import { api } from './load.js';
import { DEFAULT_MAX_MESSAGE_BYTES, OBJECT_EXPIRY_METADATA_KEY, PARTIAL_FAILURES_METADATA_KEY, decodeExpiry, type ObjectFailure } from './wire.js';

export interface ProviderCallError extends ServiceError {
  /** The upstream code the provider reported (AADSTS…, a Key Vault error code), if any. */
  reason?: string;
}

export class ProviderClient {
  private readonly client: CSIDriverProviderClient;

  constructor(endpoint: string, opts: { maxMessageBytes?: number } = {}) {
    const max = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.client = new api.v1alpha1.CSIDriverProvider(`unix:${socketPath(endpoint)}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
    });
  }

  version(timeoutMs = 5_000): Promise<VersionResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.Version({ version: 'v1alpha1' }, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(withReason(err)) : resolve(res!))),
    );
  }

  /**
   * Mount; `failures` lists objects a partial sync left out; `expiry` is the provider's optional
   * expiry trailer (undefined when it sent none; `dropped` counts entries that were not valid).
   */
  mount(request: MountRequest, timeoutMs = 30_000): Promise<MountResponse__Output & { failures: ObjectFailure[]; expiry?: { expiresOn: Record<string, Date>; dropped: number } }> {
    return new Promise((resolve, reject) => {
      let failures: ObjectFailure[] = [];
      let expiry: { expiresOn: Record<string, Date>; dropped: number } | undefined;
      const call = this.client.Mount(request, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        // The trailer arrives in the 'status' event, emitted right after this callback.
        setImmediate(() => (err ? reject(withReason(err)) : resolve({ ...res!, failures, ...(expiry ? { expiry } : {}) }))),
      );
      call.on('status', (s) => {
        const raw = s.metadata.get(PARTIAL_FAILURES_METADATA_KEY)[0];
        if (raw) failures = JSON.parse(String(raw)) as ObjectFailure[];
        const exp = s.metadata.get(OBJECT_EXPIRY_METADATA_KEY)[0];
        if (exp !== undefined) expiry = decodeExpiry(String(exp));
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

function withReason(err: ServiceError): ProviderCallError {
  const reason = err.metadata?.get(REASON_METADATA_KEY)[0];
  return Object.assign(err, reason ? { reason: String(reason) } : {});
}
