// API clients that reuse their connections. client-node 1.x gives every API call a new
// https.Agent, so every call opened a new TLS connection and built a new TLS context: measured at
// most of the manager's CPU per reconcile (bench/README.md). Here the authentication client-node
// computes for each call is kept, and its one-off agent swapped for a keep-alive agent shared by
// all calls with the same TLS identity (a rotated client certificate gets a new agent).
import { createConfiguration, ServerConfiguration, type KubeConfig, type RequestContext, type SecurityAuthentication } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { Agent } from 'node:https';

type ApiConstructor<T> = new (config: ReturnType<typeof createConfiguration>) => T;

class PooledAuthentication implements SecurityAuthentication {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly kc: KubeConfig) {}

  getName(): string {
    return 'pooled-kubeconfig';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kc.applySecurityAuthentication(context);
    const oneOff = context.getAgent();
    // Proxy agents (a cluster proxy-url) are left as client-node makes them.
    if (!(oneOff instanceof Agent) || oneOff.constructor !== Agent) return;
    const o = oneOff.options;
    const key = createHash('sha256')
      .update(JSON.stringify([String(o.ca ?? ''), String(o.cert ?? ''), String(o.key ?? ''), o.pfx ? createHash('sha256').update(o.pfx as Buffer).digest('hex') : '', o.passphrase ?? '', o.rejectUnauthorized, o.servername ?? '']))
      .digest('hex');
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ ...o, keepAlive: true, maxFreeSockets: 64, scheduling: 'lifo' });
      this.agents.set(key, agent);
    }
    context.setAgent(agent);
  }

  destroy(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

export class KubeClients {
  private readonly auth: PooledAuthentication;

  constructor(private readonly kc: KubeConfig) {
    this.auth = new PooledAuthentication(kc);
  }

  /** Like `kc.makeApiClient`, with pooled connections. */
  make<T>(api: ApiConstructor<T>): T {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return new api(createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: this.auth } }));
  }

  close(): void {
    this.auth.destroy();
  }
}
