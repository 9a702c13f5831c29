// Starts the manager as its own process against the local stack: by default the bundle the image
// runs (deploy/bundle.mjs), or tsc's dist (`entry: 'dist'`, for comparisons in the bench).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';
import { freePort } from '../env/ports.js';
import { loadStackInfo } from '../env/stack.js';
import { managerKubeconfig } from '../env/manager-identity.js';

export interface RunningManager {
  child: ChildProcess;
  logFile: string;
  metricsUrl: string;
  healthUrl: string;
  readyUrl: string;
  logs(): string;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the manager. By default it authenticates as its own ServiceAccount with the RBAC from
 * deploy/manifests (RBAC and admission policies, as in the pod); `asAdmin` uses the admin kubeconfig.
 */
export async function startManager(opts: {
  namespace: string;
  providerDir: string;
  args?: string[];
  asAdmin?: boolean;
  kubeconfig?: string;
  env?: Record<string, string>;
  dir?: string;
  hashKey?: Buffer;
  nodeArgs?: string[];
  waitReady?: boolean;
  entry?: 'bundle' | 'dist';
}): Promise<RunningManager> {
  const info = loadStackInfo();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sss-manager-'));
  const kubeconfig = opts.kubeconfig ?? (opts.asAdmin ? info.k8s.kubeconfig : await managerKubeconfig(info, dir));
  const keyFile = join(dir, 'hash.key');
  writeFileSync(keyFile, opts.hashKey ?? randomBytes(32), { mode: 0o600 });
  const [health, metrics] = [await freePort(), await freePort()];
  const logFile = join(dir, 'manager.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      join(repoRoot, 'controller', opts.entry ?? 'bundle', 'main.js'),
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${opts.namespace}`,
      `--provider-dir=${opts.providerDir}`,
      `--hash-key-file=${keyFile}`,
      `--health-port=${health}`,
      `--metrics-port=${metrics}`,
      '--http-bind-address=127.0.0.1',
      '--log-level=debug',
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, POD_NAME: `manager-${opts.namespace}`, ...opts.env } },
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  // Not waiting for ready: waiting for the health port, so the caller can watch readiness itself.
  const probe = opts.waitReady === false ? 'healthz' : 'readyz';
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`manager exited (${child.exitCode}):\n${readFileSync(logFile, 'utf8')}`);
    const ok = await fetch(`http://127.0.0.1:${health}/${probe}`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`manager did not become ready:\n${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    logFile,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    healthUrl: `http://127.0.0.1:${health}/healthz`,
    readyUrl: `http://127.0.0.1:${health}/readyz`,
    logs: () => readFileSync(logFile, 'utf8'),
    metrics: async () => (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text(),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
