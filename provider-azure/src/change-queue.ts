// The storage queue Key Vault's events arrive in, through @azure/storage-queue: receive a batch
// (the messages stay in the queue, invisible to other readers for a while) and delete a message
// once it has been acted on, so delivery is at least once. Each call has its own deadline and no
// SDK retry: the caller's loop (change-source.ts) backs off, so a failing queue costs one request
// per backoff step, never a storm.
import type { TokenCredential } from '@azure/identity';
import { QueueClient } from '@azure/storage-queue';

/** One message as received: the text to parse and what deleting it takes. */
export interface QueueMessage {
  messageId: string;
  popReceipt: string;
  text: string;
}

export interface EventQueue {
  receive(signal: AbortSignal): Promise<QueueMessage[]>;
  delete(message: QueueMessage, signal: AbortSignal): Promise<void>;
}

/** The most a receive may ask for (learn.microsoft.com/rest/api/storageservices/get-messages). */
export const RECEIVE_BATCH = 32;
/**
 * How long a received message stays invisible to other receives: long enough to notify and delete
 * it, short enough that a message whose notice never went out (the last watcher left, the provider
 * stopped) is offered again soon.
 */
export const VISIBILITY_TIMEOUT_SECONDS = 30;
/** Deadline of one queue call, the token request included. */
export const QUEUE_CALL_TIMEOUT_MS = 15_000;

export function storageQueue(url: string, credential: TokenCredential): EventQueue {
  const client = new QueueClient(url, credential, {
    retryOptions: { maxTries: 1, tryTimeoutInMs: QUEUE_CALL_TIMEOUT_MS },
    userAgentOptions: { userAgentPrefix: 'secret-store-sync-provider-azure' },
  });
  const bounded = (signal: AbortSignal) => AbortSignal.any([signal, AbortSignal.timeout(QUEUE_CALL_TIMEOUT_MS)]);
  return {
    async receive(signal) {
      const res = await client.receiveMessages({
        numberOfMessages: RECEIVE_BATCH,
        visibilityTimeout: VISIBILITY_TIMEOUT_SECONDS,
        abortSignal: bounded(signal),
      });
      return res.receivedMessageItems.map((m) => ({
        messageId: m.messageId,
        popReceipt: m.popReceipt,
        text: m.messageText,
      }));
    },
    async delete(message, signal) {
      await client.deleteMessage(message.messageId, message.popReceipt, { abortSignal: bounded(signal) });
    },
  };
}

/** Why the queue could not be read: a reason for the state, the metric and the log line. */
export type QueueFailure =
  | { reason: 'TokenFailed'; detail: string }
  | { reason: 'Forbidden'; code: string }
  | { reason: 'TokenRejected'; code: string }
  | { reason: 'QueueNotFound' }
  | { reason: 'QueueUnreachable'; code: string }
  | { reason: 'QueueError'; status: number; code: string };

/** A token request of the queue's identity failed (queue-identity.ts marks them so). */
export class QueueTokenError extends Error {
  override readonly name = 'QueueTokenError';
  constructor(readonly detail: string) {
    super(`no token for the queue: ${detail}`);
  }
}

/**
 * What a failed queue call means, from the SDK's RestError: Azure Storage's error code
 * (`x-ms-error-code`, in `details.errorCode`; learn.microsoft.com/rest/api/storageservices/
 * queue-service-error-codes and common-rest-api-error-codes) or the network error's code.
 */
export function queueFailure(err: unknown): QueueFailure {
  const e = (err ?? {}) as { name?: string; statusCode?: number; code?: string; details?: { errorCode?: string } };
  if (err instanceof QueueTokenError) return { reason: 'TokenFailed', detail: err.detail };
  const code = e.details?.errorCode ?? e.code ?? '';
  const status = e.statusCode;
  // 403 AuthorizationPermissionMismatch: the identity has no queue data role on this queue.
  if (status === 403 && code !== 'AuthenticationFailed') return { reason: 'Forbidden', code: code || 'Forbidden' };
  if (status === 401 || code === 'AuthenticationFailed' || code === 'InvalidAuthenticationInfo')
    return { reason: 'TokenRejected', code: code || 'Unauthorized' };
  if (status === 404) return { reason: 'QueueNotFound' };
  if (status === undefined || e.name === 'AbortError')
    return { reason: 'QueueUnreachable', code: e.name === 'AbortError' ? 'Timeout' : code || 'NetworkError' };
  return { reason: 'QueueError', status, code: code || `HTTP${status}` };
}
