// kube-controller-manager for the stack's control plane, with only the controllers tests rely on.
import { join } from 'node:path';
import type { Apiserver } from './apiserver.js';
import { Component, startProcess, waitUntil } from './processes.js';
import { controllersFlag } from './versions.js';

export interface ControllerManagerOptions {
  binDir: string;
  stateDir: string;
  kubeconfig: string;
  apiserver: Apiserver;
  version: string;
}

export class ControllerManager extends Component {
  constructor(private readonly opts: ControllerManagerOptions) {
    super();
  }

  async start(): Promise<void> {
    this.process = startProcess({
      name: 'kube-controller-manager',
      command: join(this.opts.binDir, 'kube-controller-manager'),
      stateDir: this.opts.stateDir,
      args: [
        `--kubeconfig=${this.opts.kubeconfig}`,
        // GC (owner references), namespace deletion, the default ServiceAccount, and aggregated roles.
        controllersFlag(this.opts.version, [
          'garbage-collector-controller',
          'namespace-controller',
          'serviceaccount-controller',
          'clusterrole-aggregation-controller',
        ]),
        '--leader-elect=false',
        '--secure-port=0',
        '--kube-api-qps=200',
        '--kube-api-burst=400',
        '--concurrent-gc-syncs=10',
      ],
    });
    // Ready once the serviceaccount controller has made `default` in kube-system.
    await waitUntil(
      'kube-controller-manager (default ServiceAccount)',
      () => this.opts.apiserver.ok('/api/v1/namespaces/kube-system/serviceaccounts/default'),
      { timeoutMs: 60_000, process: this.process, intervalMs: 500 },
    );
  }
}
