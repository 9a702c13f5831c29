// etcd for the stack's control plane: one member on loopback, its data on tmpfs when there is one.
import { rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Component, startProcess, waitUntil } from './processes.js';

export interface EtcdOptions {
  binDir: string;
  stateDir: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
}

export class Etcd extends Component {
  readonly url: string;

  constructor(private readonly opts: EtcdOptions) {
    super();
    this.url = `http://127.0.0.1:${opts.clientPort}`;
  }

  /** Starts etcd on its data folder (a new one, or the one a previous start left) and waits for /health. */
  async start(): Promise<void> {
    const peer = `http://127.0.0.1:${this.opts.peerPort}`;
    this.process = startProcess({
      name: 'etcd',
      command: join(this.opts.binDir, 'etcd'),
      stateDir: this.opts.stateDir,
      args: [
        '--name=stack',
        `--data-dir=${this.opts.dataDir}`,
        `--listen-client-urls=${this.url}`,
        `--advertise-client-urls=${this.url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=stack=${peer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
    });
    await waitUntil('etcd /health', () => httpOk(`${this.url}/health`), { timeoutMs: 30_000, process: this.process });
  }

  /** `stop` keeps the data, so a `start` after it carries on from it; this removes it. */
  removeData(): void {
    rmSync(this.opts.dataDir, { recursive: true, force: true });
  }
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((res) => {
    const req = httpRequest(url, { timeout: 2_000 }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.on('error', () => res(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
