// kube-apiserver for the stack's control plane: its flags, and a start that waits for /readyz.
import { request } from 'node:https';
import { join } from 'node:path';
import type { ControlPlaneCerts } from './control-plane-certs.js';
import { Component, startProcess, waitUntil } from './processes.js';

export interface ApiserverOptions {
  binDir: string;
  stateDir: string;
  port: number;
  etcdUrl: string;
  certs: ControlPlaneCerts;
  /** Where the apiserver keeps certificates it makes itself. */
  certDir: string;
  /** Flags after the stack's own (a later one wins): a test's runtime-config, watch cache or compaction. */
  extraArgs?: string[];
}

export class Apiserver extends Component {
  readonly url: string;

  constructor(private readonly opts: ApiserverOptions) {
    super();
    this.url = `https://127.0.0.1:${opts.port}`;
  }

  args(): string[] {
    const { certs } = this.opts;
    const server = this.url;
    return [
      `--etcd-servers=${this.opts.etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.opts.port}`,
      `--cert-dir=${this.opts.certDir}`,
      `--tls-cert-file=${certs.apiserver.certFile}`,
      `--tls-private-key-file=${certs.apiserver.keyFile}`,
      `--client-ca-file=${certs.caFile}`,
      // Node: what a kubelet may read (its pods' Secrets, tokens), when test/env/node.ts runs one.
      '--authorization-mode=Node,RBAC',
      // To a kubelet (logs, exec): its InternalIP (127.0.0.1), with a client certificate it checks.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${certs.kubeletClient.certFile}`,
      `--kubelet-client-key=${certs.kubeletClient.keyFile}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // https issuer: without it the OIDC discovery endpoints are silently not served.
      `--service-account-issuer=${server}`,
      `--service-account-jwks-uri=${server}/openid/v1/jwks`,
      `--service-account-key-file=${certs.serviceAccount.pubFile}`,
      `--service-account-signing-key-file=${certs.serviceAccount.keyFile}`,
      `--api-audiences=${server}`,
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--allow-privileged=true',
      ...(this.opts.extraArgs ?? []),
    ];
  }

  async start(): Promise<void> {
    this.process = startProcess({
      name: 'kube-apiserver',
      command: join(this.opts.binDir, 'kube-apiserver'),
      stateDir: this.opts.stateDir,
      args: this.args(),
    });
    // With the admin cert: anonymous /readyz is refused until the RBAC bootstrap hook has run.
    await waitUntil('kube-apiserver /readyz', () => this.ok('/readyz'), {
      timeoutMs: 90_000,
      process: this.process,
      intervalMs: 500,
    });
  }

  /** Whether a GET of `path` as the stack's admin answers 200. */
  async ok(path: string): Promise<boolean> {
    return (await httpsGet(`${this.url}${path}`, this.opts.certs.admin.tls)).status === 200;
  }
}

function httpsGet(
  url: string,
  tls: { ca: string; cert?: string; key?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request(url, { ...tls, timeout: 5_000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}
