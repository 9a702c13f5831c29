// A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager built
// from the Go module proxy by build-control-plane.sh. Writes an admin kubeconfig for client-node and
// for the real kubectl.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { Apiserver } from './apiserver.js';
import { writeControlPlaneCerts, type ControlPlaneCerts } from './control-plane-certs.js';
import { ControllerManager } from './controller-manager.js';
import { Etcd } from './etcd.js';
import { ensureKine, Kine } from './kine.js';
import type { Ca } from './pki.js';
import { freePort } from './ports.js';
import {
  killRecordedOnExit,
  recordScratch,
  stopRecorded,
  waitUntil,
  withHeartbeat,
  type Managed,
} from './processes.js';
import { NEWEST_KUBE_VERSION, resolveKubeVersion } from './versions.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = resolve(here, '../..');

export interface ControlPlaneInfo {
  server: string;
  issuer: string;
  caFile: string;
  kubeconfig: string;
  adminCertFile: string;
  adminKeyFile: string;
  /** The etcd API's URL: etcd's own, or kine's. */
  etcd: string;
  datastore: Datastore;
  binDir: string;
  /** The Kubernetes release running, e.g. 1.27.16. */
  version: string;
  /** The client certificate of the one node test/env/node.ts may run (user system:node:<NODE_NAME>). */
  nodeCertFile: string;
  nodeKeyFile: string;
}

export type Datastore = 'etcd' | 'kine';

export function datastoreFromEnv(): Datastore {
  const v = process.env.SSS_DATASTORE ?? 'etcd';
  if (v !== 'etcd' && v !== 'kine') throw new Error(`SSS_DATASTORE=${v}: etcd or kine`);
  return v;
}

/** The name of the stack's node (test/env/node.ts), fixed so its certificate can be issued here with the CA. */
export const NODE_NAME = 'stack-node';

export interface ControlPlane {
  info: ControlPlaneInfo;
  /** The running processes, in the order they start. */
  readonly processes: Managed[];
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
export async function ensureBinaries(
  log: (m: string) => void = (m) => console.error(m),
  kubeVersion: string = resolveKubeVersion(),
): Promise<string> {
  const script = join(here, 'build-control-plane.sh');
  const child = spawn('bash', [script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // An older release runs without a node here: its control plane is all it needs built.
    env: {
      ...process.env,
      K8S_VERSION: kubeVersion,
      ...(kubeVersion === NEWEST_KUBE_VERSION ? {} : { K8S_BINS: 'kube-apiserver kube-controller-manager' }),
    },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  // 'close', not 'exit': only then has all of stdout (the folder, on its last line) been read.
  const code = await withHeartbeat(
    {
      log,
      message: (s) =>
        `[control-plane] still building (${Math.floor(s / 60)} min ${s % 60} s so far; a first build takes 10-25 min, later runs use the cache)`,
      everyMs: 30_000,
    },
    () => new Promise<number | null>((resolve, reject) => child.once('error', reject).once('close', resolve)),
  );
  if (code !== 0) throw new Error(`build-control-plane.sh failed (exit ${code})`);
  const dir = out.trim().split('\n').pop();
  if (!dir) throw new Error('build-control-plane.sh printed no folder');
  return dir;
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
  /** A release or minor (see versions.ts); the newest by default. */
  kubeVersion?: string;
  /** etcd (default), or kine over SQLite as K3s runs by default; SSS_DATASTORE sets the default. */
  datastore?: Datastore;
  /** Extra kube-apiserver flags, e.g. `--runtime-config=...` or `--etcd-compaction-interval=2s`. */
  apiserverArgs?: string[];
}): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const version = resolveKubeVersion(opts.kubeVersion);
  const binDir = await ensureBinaries(log, version);
  killRecordedOnExit(opts.stateDir, opts.handleSignals ?? true);
  const datastore = opts.datastore ?? datastoreFromEnv();
  const { certs, etcd, apiserver, kubeconfig, kcm } = await components({
    binDir,
    stateDir: opts.stateDir,
    ca: opts.ca,
    version,
    datastore,
    apiserverArgs: opts.apiserverArgs,
  });
  const stop = async () => {
    // Each after everything that uses it.
    for (const p of [kcm, apiserver, etcd]) await p.stop();
    etcd.removeData();
    // Forget the stopped pids, so no later clean-up signals a pid the system has reused.
    await stopRecorded(opts.stateDir);
  };

  try {
    await etcd.start();
    log(`${datastore} ready at ${etcd.url}`);
    await apiserver.start();
    log(`kube-apiserver ready at ${apiserver.url}`);
    await applyStartupManifests(kubeconfig, opts.manifests ?? []);
    await kcm.start();
    log('kube-controller-manager running');
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    info: {
      server: apiserver.url,
      issuer: apiserver.url,
      caFile: certs.caFile,
      kubeconfig,
      adminCertFile: certs.admin.certFile,
      adminKeyFile: certs.admin.keyFile,
      etcd: etcd.url,
      datastore,
      binDir,
      version,
      nodeCertFile: certs.node.certFile,
      nodeKeyFile: certs.node.keyFile,
    },
    get processes() {
      return [etcd, apiserver, kcm].flatMap((c) => (c.process ? [c.process] : []));
    },
    stop,
    async restartApiserver(downMs = 2_000) {
      await apiserver.stop();
      await outage(downMs);
      await apiserver.start();
      log('kube-apiserver restarted');
    },
    async restartEtcd(downMs = 2_000) {
      await etcd.stop();
      await outage(downMs);
      await etcd.start();
      log('etcd restarted');
    },
  };
}

/**
 * The control plane's parts, not started yet: its certificates and admin kubeconfig written, ports
 * chosen, and each component told where the one before it listens.
 */
async function components(o: {
  binDir: string;
  stateDir: string;
  ca: Ca;
  version: string;
  datastore: Datastore;
  apiserverArgs?: string[];
}) {
  const { binDir, stateDir, version } = o;
  const dir = join(stateDir, 'control-plane');
  const certs = writeControlPlaneCerts(join(dir, 'pki'), o.ca, NODE_NAME);
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  // On tmpfs when there is one: the control plane's writes then cost no disk syncs. Recorded, so
  // that `stack down` after a crash removes it too (about 124 MB).
  const dataDir = join(existsSync('/dev/shm') ? '/dev/shm' : dir, `sss-${o.datastore}-${process.pid}-${apiPort}`);
  recordScratch(stateDir, dataDir);
  const etcd =
    o.datastore === 'kine'
      ? new Kine({ binary: await ensureKine(), stateDir, clientPort: etcdPort, dataDir })
      : new Etcd({ binDir, stateDir, clientPort: etcdPort, peerPort, dataDir });
  const apiserver = new Apiserver({
    binDir,
    stateDir,
    port: apiPort,
    etcdUrl: etcd.url,
    certs,
    certDir: join(dir, 'apiserver-certs'),
    extraArgs: o.apiserverArgs,
  });
  const kubeconfig = writeAdminKubeconfig(join(dir, 'kubeconfig'), apiserver.url, certs);
  const kcm = new ControllerManager({ binDir, stateDir, kubeconfig, apiserver, version });
  return { certs, etcd, apiserver, kubeconfig, kcm };
}

/** A fixed wait that is the fault itself: the component stays down this long. */
function outage(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The admin's kubeconfig, for client-node and the real kubectl. */
function writeAdminKubeconfig(file: string, server: string, certs: ControlPlaneCerts): string {
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: local-stack`,
      `  cluster: {server: "${server}", certificate-authority: "${certs.caFile}"}`,
      'users:',
      `- name: admin`,
      `  user: {client-certificate: "${certs.admin.certFile}", client-key: "${certs.admin.keyFile}"}`,
      'contexts:',
      '- name: local-stack',
      '  context: {cluster: local-stack, user: admin}',
      'current-context: local-stack',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return file;
}

/** The stack's bootstrap objects, then the caller's manifests, waiting until their CRDs are Established. */
async function applyStartupManifests(kubeconfig: string, manifests: string[]): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await applyManifests(kc, [join(here, 'manifests', 'bootstrap.yaml')]);
  if (!manifests.length) return;
  const applied = await applyManifests(kc, manifests);
  const crds = applied.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => o.metadata?.name ?? '');
  await waitForCrds(kc, crds);
}
