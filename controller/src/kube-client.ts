// API clients that reuse their connections and their authentication. For every API call,
// client-node 1.x builds a new https.Agent (so a new TLS connection and TLS context) and reads the
// kubeconfig's files again, synchronously (the CA, a token file). Measured, that was most of a
// reconcile's CPU (bench/README.md). Here what client-node computes is kept for a few seconds —
// long enough to matter at hundreds of calls a second, short enough that a rotated token or
// certificate is picked up — and its one-off agent is swapped for a keep-alive agent shared by all
// calls with the same TLS identity.
//
// Every call also gets a deadline (a request on a half-dead kept-alive connection would otherwise
// hang its worker, or the lease renewal, forever), and every write first passes the fence: a
// manager that is not sure it holds the lease sends nothing that changes the cluster, and a write's
// deadline ends where that certainty does. Retries are
// the callers': reconciles requeue with backoff, informers relist, the elector ticks again.
import {
  createConfiguration,
  HttpMethod,
  RequestContext,
  ServerConfiguration,
  type KubeConfig,
  type SecurityAuthentication,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { Agent } from 'node:https';

type ApiConstructor<T> = new (config: ReturnType<typeof createConfiguration>) => T;

const REFRESH_MS = 5_000;

interface Auth {
  at: number;
  headers: Record<string, string>;
  agent: unknown;
}

/** Raised instead of sending a write while the lease is not surely held. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

export interface CallPolicy {
  /** Deadline of every call. */
  timeoutMs: number;
  /**
   * For writes (anything but GET): how long from now one may take — until this manager could no
   * longer be sure it holds the lease. Nothing is sent when it is 0 or less, and a write still in
   * flight then is aborted, so none can land after a successor may have taken over.
   */
  writeBudgetMs?: () => number;
}

export class PooledAuthentication implements SecurityAuthentication {
  private readonly agents = new Map<string, Agent>();
  private current?: Promise<Auth>;
  private readonly cacheable: boolean;

  constructor(
    private readonly kc: KubeConfig,
    private readonly server: string,
    private readonly now: () => number = Date.now,
    private readonly policy: CallPolicy = { timeoutMs: 30_000 },
  ) {
    this.cacheable = cacheable(kc);
  }

  getName(): string {
    return 'pooled-kubeconfig';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    const budget = context.getHttpMethod() === HttpMethod.GET ? Infinity : (this.policy.writeBudgetMs?.() ?? Infinity);
    if (budget <= 0)
      throw new NotLeaderError(
        `not sent: this manager does not hold the lease (${context.getHttpMethod()} ${new URL(context.getUrl()).pathname})`,
      );
    context.setSignal(AbortSignal.timeout(Math.ceil(Math.min(this.policy.timeoutMs, budget))));
    let auth = await this.current?.catch(() => undefined);
    if (!auth || this.now() - auth.at > REFRESH_MS || !this.cacheable) {
      const next = this.compute();
      this.current = next;
      // A failure (an unreadable file) is not kept: the next call tries again.
      next.catch(() => {
        if (this.current === next) this.current = undefined;
      });
      auth = await next;
    }
    for (const [k, v] of Object.entries(auth.headers)) context.setHeaderParam(k, v);
    context.setAgent(auth.agent as never);
  }

  private async compute(): Promise<Auth> {
    const probe = new RequestContext(this.server, HttpMethod.GET);
    await this.kc.applySecurityAuthentication(probe);
    return { at: this.now(), headers: { ...probe.getHeaders() }, agent: this.pooled(probe.getAgent()) };
  }

  private pooled(oneOff: unknown): unknown {
    // Proxy agents (a cluster proxy-url) are used as client-node makes them.
    if (!(oneOff instanceof Agent) || oneOff.constructor !== Agent) return oneOff;
    const o = oneOff.options;
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          String(o.ca ?? ''),
          String(o.cert ?? ''),
          String(o.key ?? ''),
          o.pfx
            ? createHash('sha256')
                .update(o.pfx as Buffer)
                .digest('hex')
            : '',
          o.passphrase ?? '',
          o.rejectUnauthorized,
          o.servername ?? '',
        ]),
      )
      .digest('hex');
    let agent = this.agents.get(key);
    if (!agent) {
      // Idle sockets close after 30 s, before the apiserver's own idle timeout can race a reuse.
      agent = new Agent({ ...o, keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo', timeout: 30_000 });
      // A rotated certificate or CA: the old agent's calls get a minute to finish, then it goes.
      for (const [k, old] of this.agents) {
        this.agents.delete(k);
        setTimeout(() => old.destroy(), 60_000).unref();
      }
      this.agents.set(key, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/**
 * Exec plugins and OIDC refresh a token only once it has expired, so their headers are computed for
 * every call (the agent is still shared); static tokens, token files (in-cluster, which client-node
 * re-reads each minute anyway) and client certificates are kept for a few seconds.
 */
function cacheable(kc: KubeConfig): boolean {
  const user = kc.getCurrentUser();
  if (user?.exec) return false;
  return !user?.authProvider || user.authProvider.name === 'tokenFile' || !!user.authProvider.config?.tokenFile;
}

export class KubeClients {
  private readonly auth: PooledAuthentication;
  private readonly server: string;

  constructor(kc: KubeConfig, policy: CallPolicy = { timeoutMs: 30_000 }) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server;
    this.auth = new PooledAuthentication(kc, cluster.server, Date.now, policy);
  }

  /** Like `kc.makeApiClient`, with pooled connections and authentication. */
  make<T>(api: ApiConstructor<T>): T {
    return new api(
      createConfiguration({
        baseServer: new ServerConfiguration(this.server, {}),
        authMethods: { default: this.auth },
      }),
    );
  }

  close(): void {
    this.auth.destroy();
  }
}
