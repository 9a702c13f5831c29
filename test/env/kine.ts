// kine, K3s's default datastore, in place of etcd: the etcd v3 API served over one SQLite file, as
// a single K3s server runs it (github.com/k3s-io/kine). Compaction is left to kube-apiserver's
// --etcd-compaction-interval, kine's own interval being off by default.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Component, startProcess, waitUntil } from './processes.js';

const SQLITE_PARAMS =
  '_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=20&cache=shared';

export interface KineOptions {
  stateDir: string;
  dataDir: string;
  clientPort: number;
}

/** Builds kine if the cache lacks it (test/env/build-kine.sh) and returns the binary's path. */
export async function ensureKine(): Promise<string> {
  const script = fileURLToPath(new URL('build-kine.sh', import.meta.url));
  const { stdout } = await promisify(execFile)('bash', [script], {
    maxBuffer: 1 << 20,
  });
  return stdout.trim().split('\n').pop()!;
}

export class Kine extends Component {
  readonly url: string;

  constructor(private readonly opts: KineOptions & { binary: string }) {
    super();
    this.url = `http://127.0.0.1:${opts.clientPort}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.opts.dataDir, { recursive: true });
    const db = join(this.opts.dataDir, 'state.db');
    this.process = startProcess({
      name: 'kine',
      command: this.opts.binary,
      stateDir: this.opts.stateDir,
      args: [
        `--listen-address=127.0.0.1:${this.opts.clientPort}`,
        // kine's default SQLite parameters (pkg/drivers/sqlite DefaultParams), in a folder of our own.
        `--endpoint=sqlite://${db}?${SQLITE_PARAMS}`,
        // Its default is :8080 on every address, which a second stack (or anything else) may hold.
        '--metrics-bind-address=127.0.0.1:0',
      ],
    });
    await waitUntil('kine accepting connections', () => listening(this.opts.clientPort), {
      timeoutMs: 30_000,
      process: this.process,
    });
  }

  removeData(): void {
    rmSync(this.opts.dataDir, { recursive: true, force: true });
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.end();
      res(true);
    });
    s.on('error', () => res(false));
  });
}
