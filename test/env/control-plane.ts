// A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager built
// from the Go module proxy by build-control-plane.sh. Writes an admin kubeconfig for client-node and
// for the real kubectl.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { Ca } from './pki.js';
import { signingKey } from './pki.js';
import { freePort } from './ports.js';
import { killRecordedOnExit, startProcess, stopProcess, stopRecorded, waitUntil, type Managed } from './processes.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = resolve(here, '../..');

export interface ControlPlaneInfo {
  server: string;
  issuer: string;
  caFile: string;
  kubeconfig: string;
  adminCertFile: string;
  adminKeyFile: string;
  etcd: string;
  binDir: string;
  /** The client certificate of the one node test/env/node.ts may run (user system:node:<NODE_NAME>). */
  nodeCertFile: string;
  nodeKeyFile: string;
}

/** The name of the stack's node (test/env/node.ts), fixed so its certificate can be issued here with the CA. */
export const NODE_NAME = 'stack-node';

export interface ControlPlane {
  info: ControlPlaneInfo;
  processes: Managed[];
  stop(): Promise<void>;
  /** Stops kube-apiserver for `downMs`, then starts it again on the same port (resilience tests). */
  restartApiserver(downMs?: number): Promise<void>;
  /** Stops etcd for `downMs` (the apiserver stays up, without storage), then starts it again on its data. */
  restartEtcd(downMs?: number): Promise<void>;
}

/**
 * Builds the binaries if the cache lacks them and returns their folder. Asynchronous, so nothing
 * else waiting in this process (a readiness poll, a timer) starves while a cold build takes its
 * 10-25 minutes; the script's own steps go to stderr, and a line every 30 s says it is still busy.
 */
export async function ensureBinaries(log: (m: string) => void = (m) => console.error(m)): Promise<string> {
  const script = join(here, 'build-control-plane.sh');
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const started = Date.now();
  const beat = setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    log(
      `[control-plane] still building (${Math.floor(s / 60)} min ${s % 60} s so far; a first build takes 10-25 min, later runs use the cache)`,
    );
  }, 30_000);
  try {
    // 'close', not 'exit': only then has all of stdout (the folder, on its last line) been read.
    const code = await new Promise<number | null>((resolve, reject) =>
      child.once('error', reject).once('close', resolve),
    );
    if (code !== 0) throw new Error(`build-control-plane.sh failed (exit ${code})`);
  } finally {
    clearInterval(beat);
  }
  const dir = out.trim().split('\n').pop();
  if (!dir) throw new Error('build-control-plane.sh printed no folder');
  return dir;
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

/** Server-side applies every object of the given YAML files (CRDs, RBAC, policies). */
export async function applyManifests(
  kc: KubeConfig,
  files: string[],
  fieldManager = 'secret-store-sync-tests',
): Promise<KubernetesObject[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  for (const file of files) {
    // yaml, not client-node's loader: rendered charts hold empty documents, which it rejects.
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON() as KubernetesObject | null)) {
      if (!doc?.kind) continue;
      applied.push(await api.patch(doc, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply));
    }
  }
  return applied;
}

export async function waitForCrds(kc: KubeConfig, names: string[], timeoutMs = 60_000): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const name of names) {
    await waitUntil(
      `CRD ${name} to be Established`,
      async () => {
        const crd = (await api.read({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name },
        })) as {
          status?: { conditions?: { type: string; status: string }[] };
        };
        return !!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { timeoutMs },
    );
  }
}

export function yamlFilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

export async function startControlPlane(opts: {
  stateDir: string;
  ca: Ca;
  /** Manifests applied before kube-controller-manager starts, so its garbage collector sees their kinds at once. */
  manifests?: string[];
  log?: (msg: string) => void;
  handleSignals?: boolean;
}): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const binDir = await ensureBinaries(log);
  killRecordedOnExit(opts.stateDir, opts.handleSignals ?? true);
  const dir = join(opts.stateDir, 'control-plane');
  const pki = join(dir, 'pki');
  mkdirSync(pki, { recursive: true });
  const file = (name: string, content: string) => {
    const p = join(pki, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  };
  const processes: Managed[] = [];
  const stop = async () => {
    for (const p of [...processes].reverse()) await stopProcess(p);
    processes.length = 0;
    rmSync(etcdData, { recursive: true, force: true });
    // Forget the stopped pids, so no later clean-up signals a pid the system has reused.
    await stopRecorded(opts.stateDir);
  };

  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = file('ca.crt', opts.ca.cert);
  const apiCert = opts.ca.issue({
    commonName: 'kube-apiserver',
    dnsNames: ['localhost', 'kubernetes.default.svc'],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  const admin = opts.ca.issue({ commonName: 'stack-admin', organization: 'system:masters', usage: 'client' });
  const kubeletClient = opts.ca.issue({
    commonName: 'kube-apiserver-kubelet-client',
    organization: 'system:masters',
    usage: 'client',
  });
  const node = opts.ca.issue({ commonName: `system:node:${NODE_NAME}`, organization: 'system:nodes', usage: 'client' });
  const sa = signingKey();
  const adminCertFile = file('admin.crt', admin.cert);
  const adminKeyFile = file('admin.key', admin.key);
  // etcd on tmpfs when there is one: the control plane's writes then cost no disk syncs.
  const etcdData = join(existsSync('/dev/shm') ? '/dev/shm' : dir, `sss-etcd-${process.pid}-${apiPort}`);

  try {
    const startEtcd = async () => {
      const etcd = startProcess({
        name: 'etcd',
        command: join(binDir, 'etcd'),
        stateDir: opts.stateDir,
        args: [
          '--name=stack',
          `--data-dir=${etcdData}`,
          `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
          `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=stack=http://127.0.0.1:${peerPort}`,
          '--unsafe-no-fsync',
          '--log-level=warn',
        ],
      });
      processes.push(etcd);
      await waitUntil('etcd /health', () => httpOk(`http://127.0.0.1:${etcdPort}/health`), {
        timeoutMs: 30_000,
        process: etcd,
      });
      return etcd;
    };
    let etcd = await startEtcd();
    log(`etcd ready on 127.0.0.1:${etcdPort}`);

    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${file('apiserver.crt', apiCert.cert)}`,
      `--tls-private-key-file=${file('apiserver.key', apiCert.key)}`,
      `--client-ca-file=${caFile}`,
      // Node: what a kubelet may read (its pods' Secrets, tokens), when test/env/node.ts runs one.
      '--authorization-mode=Node,RBAC',
      // To a kubelet (logs, exec): its InternalIP (127.0.0.1), with a client certificate it checks.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${file('kubelet-client.crt', kubeletClient.cert)}`,
      `--kubelet-client-key=${file('kubelet-client.key', kubeletClient.key)}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // https issuer: without it the OIDC discovery endpoints are silently not served.
      `--service-account-issuer=${server}`,
      `--service-account-jwks-uri=${server}/openid/v1/jwks`,
      `--service-account-key-file=${file('sa.pub', sa.pub)}`,
      `--service-account-signing-key-file=${file('sa.key', sa.key)}`,
      `--api-audiences=${server}`,
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--allow-privileged=true',
    ];
    const adminTls = { ca: opts.ca.cert, cert: admin.cert, key: admin.key };
    const startApiserver = async () => {
      const apiserver = startProcess({
        name: 'kube-apiserver',
        command: join(binDir, 'kube-apiserver'),
        stateDir: opts.stateDir,
        args: apiserverArgs,
      });
      processes.push(apiserver);
      // With the admin cert: anonymous /readyz is refused until the RBAC bootstrap hook has run.
      await waitUntil(
        'kube-apiserver /readyz',
        async () => (await httpsGet(`${server}/readyz`, adminTls)).status === 200,
        {
          timeoutMs: 90_000,
          process: apiserver,
          intervalMs: 500,
        },
      );
      return apiserver;
    };
    let apiserver = await startApiserver();
    log(`kube-apiserver ready at ${server}`);

    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: local-stack`,
        `  cluster: {server: "${server}", certificate-authority: "${caFile}"}`,
        'users:',
        `- name: admin`,
        `  user: {client-certificate: "${adminCertFile}", client-key: "${adminKeyFile}"}`,
        'contexts:',
        '- name: local-stack',
        '  context: {cluster: local-stack, user: admin}',
        'current-context: local-stack',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    await applyManifests(kc, [join(here, 'manifests', 'bootstrap.yaml')]);
    if (opts.manifests?.length) {
      const applied = await applyManifests(kc, opts.manifests);
      const crds = applied.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata?.name ?? '');
      await waitForCrds(kc, crds);
    }

    const kcm = startProcess({
      name: 'kube-controller-manager',
      command: join(binDir, 'kube-controller-manager'),
      stateDir: opts.stateDir,
      args: [
        `--kubeconfig=${kubeconfig}`,
        // GC (owner references), namespace deletion, the default ServiceAccount, and aggregated roles.
        '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,clusterrole-aggregation-controller',
        '--leader-elect=false',
        '--secure-port=0',
        '--kube-api-qps=200',
        '--kube-api-burst=400',
        '--concurrent-gc-syncs=10',
      ],
    });
    processes.push(kcm);
    // Ready once the serviceaccount controller has made `default` in kube-system.
    await waitUntil(
      'kube-controller-manager (default ServiceAccount)',
      async () =>
        (await httpsGet(`${server}/api/v1/namespaces/kube-system/serviceaccounts/default`, adminTls)).status === 200,
      { timeoutMs: 60_000, process: kcm, intervalMs: 500 },
    );
    log('kube-controller-manager running');

    return {
      info: {
        server,
        issuer: server,
        caFile,
        kubeconfig,
        adminCertFile,
        adminKeyFile,
        etcd: `http://127.0.0.1:${etcdPort}`,
        binDir,
        nodeCertFile: file('node.crt', node.cert),
        nodeKeyFile: file('node.key', node.key),
      },
      processes,
      stop,
      async restartApiserver(downMs = 2_000) {
        await stopProcess(apiserver);
        processes.splice(processes.indexOf(apiserver), 1);
        await new Promise((r) => setTimeout(r, downMs));
        apiserver = await startApiserver();
        log('kube-apiserver restarted');
      },
      async restartEtcd(downMs = 2_000) {
        await stopProcess(etcd);
        processes.splice(processes.indexOf(etcd), 1);
        await new Promise((r) => setTimeout(r, downMs));
        etcd = await startEtcd();
        // Keep the order processes stop in: etcd after everything that uses it.
        processes.splice(processes.indexOf(etcd), 1);
        processes.unshift(etcd);
        log('etcd restarted');
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
