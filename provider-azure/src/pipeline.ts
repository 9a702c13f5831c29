// What every HTTP attempt to Key Vault passes through, as @azure/core-rest-pipeline policies: the
// vault's token bucket and concurrency cap with the request metrics, and a backoff for 429s that
// carry no Retry-After.
import type { Budgets } from './budget.js';
import type { VaultRequestMetrics } from './vault-labels.js';

/** Structurally an @azure/core-rest-pipeline PipelinePolicy. */
export interface Policy {
  name: string;
  sendRequest(
    request: { url: string; abortSignal?: AbortSignal },
    next: (request: never) => Promise<{ status: number }>,
  ): Promise<{ status: number }>;
}

export function operationOf(url: string): string {
  const path = new URL(url).pathname.split('/').filter(Boolean);
  const [kind, , third] = path;
  if (!kind) return 'other';
  if (path.length === 1) return `${kind}/list`;
  return third === 'versions' ? `${kind}/versions` : `${kind}/get`;
}

/** Each attempt waits for the vault's budget (per identity) and is metered. */
export function budgetPolicy(
  budgets: Budgets,
  requestMetrics: VaultRequestMetrics,
  vault: string,
  identityKey: string,
): Policy {
  return {
    name: 'secretStoreSyncBudget',
    sendRequest: async (request, next) => {
      // Looked up per attempt: an idle budget may have been dropped and made anew meanwhile.
      const budget = budgets.for(vault);
      await budget.bucket.take(identityKey, request.abortSignal);
      const release = await budget.slots.acquire(identityKey, request.abortSignal);
      const operation = operationOf(request.url);
      const started = performance.now();
      let status: number | undefined;
      try {
        const res = await next(request as never);
        status = res.status;
        return res;
      } finally {
        requestMetrics.record(vault, operation, status, (performance.now() - started) / 1000);
        release();
      }
    },
  };
}

interface Headers {
  get(name: string): string | undefined;
}
const RETRY_AFTER_HEADERS = ['retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'];

/**
 * Backs off on a 429 that carries no Retry-After. Real Key Vault often sends none (its throttling
 * guidance tells clients to back off exponentially themselves), and the SDK's retry policy retries
 * a 429 only when one of RETRY_AFTER_HEADERS is present (@azure/core-rest-pipeline
 * throttlingRetryStrategy; its exponential strategy covers 408 and 5xx). Jittered, doubling from
 * 0.5 s to 8 s, at most `maxRetries` times; every re-send passes the vault's budget again, and the
 * wait ends with the request's abort signal (the Mount's deadline).
 */
export function throttleRetryPolicy(maxRetries: number, baseMs = 500): Policy {
  const throttledWithoutHint = (status: number | undefined, headers: Headers | undefined) =>
    status === 429 && !RETRY_AFTER_HEADERS.some((h) => headers?.get(h));
  return {
    name: 'secretStoreSyncThrottleRetry',
    async sendRequest(request, next) {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = (await next(request as never)) as { status: number; headers?: Headers };
          if (attempt >= maxRetries || !throttledWithoutHint(res.status, res.headers)) return res;
        } catch (e) {
          const err = e as { statusCode?: number; response?: { headers?: Headers } };
          if (attempt >= maxRetries || !throttledWithoutHint(err.statusCode, err.response?.headers)) throw e;
        }
        const wait = Math.min(8_000, baseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        await new Promise<void>((resolve, reject) => {
          const signal = request.abortSignal;
          if (signal?.aborted) return reject(signal.reason);
          const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), wait);
          const onAbort = () => (clearTimeout(t), reject(signal!.reason));
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
    },
  };
}
