// Short-lived service-account tokens for the provider, minted with TokenRequest and reused until
// 80 % of their life has passed. Concurrent requests for the same token share one call.
import type { CoreV1Api } from '@kubernetes/client-node';
import { errorCode, errorMessage, rfc3339, type ServiceAccountToken } from '@secret-store-sync/proto';
import type { Metrics } from './metrics.js';
import { FAILURES } from './messages.js';
import { SyncError } from './reasons.js';

interface Token {
  token: string;
  expires: number;
  refreshAt: number;
}

export class TokenCache {
  private readonly tokens = new Map<string, Token>();
  private readonly pending = new Map<string, Promise<Token>>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly expirationSeconds: number,
    private readonly metrics: Metrics,
  ) {}

  /**
   * The tokens for `csi.storage.k8s.io/serviceAccount.tokens`, by audience. No audiences: none
   * minted (as upstream), for providers that authenticate otherwise.
   */
  async tokensFor(
    namespace: string,
    serviceAccount: string,
    audiences: readonly string[],
  ): Promise<Record<string, ServiceAccountToken>> {
    const entries = await Promise.all(
      audiences.map(async (aud) => [aud, await this.get(namespace, serviceAccount, aud)] as const),
    );
    return Object.fromEntries(
      entries.map(([aud, t]) => [aud, { token: t.token, expirationTimestamp: rfc3339(new Date(t.expires)) }]),
    );
  }

  private async get(namespace: string, serviceAccount: string, audience: string): Promise<Token> {
    const key = `${namespace}/${serviceAccount}/${audience}`;
    const cached = this.tokens.get(key);
    const now = Date.now();
    if (cached && now < cached.refreshAt) return cached;
    let p = this.pending.get(key);
    if (!p) {
      p = this.mint(namespace, serviceAccount, audience).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    try {
      const t = await p;
      this.tokens.set(key, t);
      return t;
    } catch (e) {
      // A refresh that fails while the old token is still valid keeps the old one.
      if (cached && now < cached.expires - 30_000) return cached;
      throw e;
    }
  }

  private async mint(namespace: string, serviceAccount: string, audience: string): Promise<Token> {
    try {
      const tr = await this.core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { spec: { audiences: [audience], expirationSeconds: this.expirationSeconds } },
      });
      this.metrics.tokenRequests.inc({ result: 'ok' });
      const issued = Date.now();
      const expires = tr.status?.expirationTimestamp
        ? new Date(tr.status.expirationTimestamp).getTime()
        : issued + this.expirationSeconds * 1000;
      return { token: tr.status?.token ?? '', expires, refreshAt: issued + 0.8 * (expires - issued) };
    } catch (e) {
      this.metrics.tokenRequests.inc({ result: 'error' });
      const code = errorCode(e);
      const detail = apiMessage(e);
      const options = { cause: e, ...(code === undefined ? {} : { upstream: { code } }) };
      if (code === 404) throw new SyncError(FAILURES.serviceAccountNotFound({ serviceAccount, namespace }), options);
      // An admission policy refusing the token is the cluster's configuration (the ServiceAccount has
      // not been opted in, or the audience is not allowed); RBAC refusing it, the manager's own.
      if ((code === 403 || code === 422) && /admission|ValidatingAdmissionPolicy/i.test(detail)) {
        throw new SyncError(FAILURES.tokenRefusedByPolicy({ serviceAccount, detail }), options);
      }
      if (code === 403) throw new SyncError(FAILURES.tokenForbidden({ serviceAccount, detail }), options);
      throw new SyncError(FAILURES.tokenRequestFailed({ serviceAccount, detail }), options);
    }
  }

  /** Drops expired tokens (called periodically). */
  prune(): void {
    const now = Date.now();
    for (const [k, t] of this.tokens) if (t.expires <= now) this.tokens.delete(k);
  }
}

/** The apiserver's message from a client-node ApiException (its body is a JSON string). */
export function apiMessage(e: unknown): string {
  const body = typeof e === 'object' && e !== null && 'body' in e ? e.body : undefined;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      /* not JSON */
    }
    if (body) return body.slice(0, 1000);
  }
  return errorMessage(e);
}
