// A real node for the local stack: containerd and runc from Debian's packages, the kubelet built
// from the same k8s.io/kubernetes module as the apiserver, registered as Node `stack-node`, plus
// what a cluster with a node runs besides (kube-scheduler; the deployment, replicaset, node
// lifecycle and root-CA publisher controllers). Pods use the host network: no CNI plugin or kube-proxy runs.
// Started on demand (the pod test, `npm run sandbox -- --pod`), so the other tests' stack stays as
// lean as before; everything lives under <stack>/node and is removed again by stopNode.
//
// Host facts this works around, each found on these machines (see README, "The local stack"):
// - cgroup v1 (hybrid): the kubelet refuses it unless `failCgroupV1: false`;
// - no CAP_SYS_RESOURCE in the bounding set: runc cannot lower oom_score_adj below 0
//   ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"), so containerd
//   clamps it (`restrict_oom_score_adj`), as for rootless runtimes;
// - the kubelet refuses a loopback node IP ("nodeIP can't be loopback address"): the node's
//   address is the host's own first non-loopback IPv4, and the kubelet listens only there.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { NODE_NAME } from './control-plane.js';
import { buildImages, PAUSE_IMAGE, type BuiltImages } from './images.js';
import { freePort } from './ports.js';
import {
  killRecordedOnExit,
  sleep,
  startProcess,
  stopProcess,
  stopRecorded,
  waitUntil,
  type Managed,
} from './processes.js';
import type { StackInfo } from './stack.js';

const run = promisify(execFile);

export interface NodeInfo {
  name: string;
  /** The node's InternalIP: the host's own address (pods on the host network have it too). */
  ip: string;
  kubeletPort: number;
  containerdSocket: string;
  images: { manager: string; provider: string; pause: string };
  /**
   * Where pods reach Key Vault on port 443: a loopback address of this node's own, relayed to
   * the emulator (give it to the pod as a hostAlias of the vault's host name).
   */
  vaultIp: string;
  dir: string;
}

export interface StackNode {
  info: NodeInfo;
  /** Seconds each part took to start (for the README's figures). */
  timings: { imagesBuilt: number; imagesImported: number; nodeReady: number; total: number };
  stop(): Promise<void>;
}

/** Kernel settings the kubelet rewrites at start (it has no option to leave them); put back by stopNode. */
const KERNEL_TUNABLES = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'];

const nodeDir = (stackDir: string) => join(stackDir, 'node');
/** The node's cgroup root: one per stack folder, so two stacks on a machine never share pods' cgroups. */
const cgroupRoot = (stackDir: string) =>
  `/sss-${createHash('sha256').update(nodeDir(stackDir)).digest('hex').slice(0, 10)}`;

/** The cgroup hierarchies mounted here (v1 controllers, the named systemd one, the unified one). */
function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]!);
}

function hostIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error(
    'the node needs a non-loopback IPv4 address on this host (the kubelet refuses 127.0.0.1 as its node IP), and none was found',
  );
}

function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error('the node (kubelet, containerd) runs as root; run the tests as root');
  const missing = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length) throw new Error(`the node needs ${missing.join(', ')}: apt-get install -y containerd runc`);
}

function containerdConfig(dir: string): string {
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${dir}/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # Our own pause image, imported before the kubelet starts: there is no registry to pull from.
  sandbox_image = "${PAUSE_IMAGE}"
  disable_apparmor = true
  # No CAP_SYS_RESOURCE here: keep every container's oom_score_adj at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${dir}/cni/bin"
    conf_dir = "${dir}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "${dir}/containerd/runc"
    SystemdCgroup = false
`;
}

function kubeletConfig(o: {
  dir: string;
  ip: string;
  port: number;
  healthzPort: number;
  caFile: string;
  cgroupRoot: string;
  socket: string;
}): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${o.ip}
port: ${o.port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${o.healthzPort}
# The apiserver (logs, exec) with its client certificate, checked against the stack's CA and then
# authorized by the apiserver; nobody anonymous.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "${o.caFile}"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://${o.socket}
cgroupDriver: cgroupfs
cgroupRoot: ${o.cgroupRoot}
# These machines mount cgroup v1 (hybrid); the kubelet refuses v1 unless told.
failCgroupV1: false
failSwapOn: false
volumePluginDir: ${o.dir}/kubelet/volume-plugins
# A developer's disk may be fuller than a node's would be: evict only when nearly out.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
# Never collect the imported images: nothing could pull them back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 20
resolvConf: /etc/resolv.conf
containerLogMaxSize: 10Mi
`;
}

function kubeconfigFor(info: StackInfo, cert: string, key: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `clusters: [{name: stack, cluster: {server: "${info.k8s.server}", certificate-authority: "${info.k8s.caFile}"}}]`,
    `users: [{name: node, user: {client-certificate: "${cert}", client-key: "${key}"}}]`,
    'contexts: [{name: stack, context: {cluster: stack, user: node}}]',
    'current-context: stack',
    '',
  ].join('\n');
}

/**
 * A TCP relay on <loopback address>:443 to the Key Vault emulator: pods resolve the vault's host
 * name to that address (hostAliases) and reach it on the real port, through TLS end to end.
 */
async function startVaultRelay(stackDir: string, target: string): Promise<{ ip: string; close(): Promise<void> }> {
  const [host, port] = target.split(':');
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  // 127.0.0.0/8 is all loopback: an address of the stack's own, so two stacks never share 443.
  const h = createHash('sha256').update(stackDir).digest();
  for (let i = 0; i < 8; i++) {
    const ip = `127.${(h[i]! % 200) + 20}.${h[i + 1]!}.${(h[i + 2]! % 250) + 2}`;
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(443, ip, () => resolve(true));
    });
    if (ok) {
      return {
        ip,
        close: async () => {
          for (const s of sockets) s.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      };
    }
  }
  throw new Error('no loopback address with port 443 free for the Key Vault relay');
}

async function ctr(socket: string, ...args: string[]): Promise<string> {
  return (await run('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { maxBuffer: 16 << 20 })).stdout;
}

function adminApi(info: StackInfo): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(info.k8s.kubeconfig);
  return kc.makeApiClient(CoreV1Api);
}

async function nodeReady(api: CoreV1Api): Promise<boolean> {
  const node = await api.readNode({ name: NODE_NAME });
  return !!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

export async function startNode(o: {
  stack: StackInfo;
  log?: (m: string) => void;
  handleSignals?: boolean;
  images?: BuiltImages;
}): Promise<StackNode> {
  const log = o.log ?? ((m: string) => console.error(`[node] ${m}`));
  requireTools();
  const started = Date.now();
  const info = o.stack;
  const dir = nodeDir(info.dir);
  await cleanupNode(info.dir); // what a crashed run left here
  for (const d of ['containerd', 'cni/bin', 'cni/conf', 'kubelet', 'images'])
    mkdirSync(join(dir, d), { recursive: true });
  // Its own pid file: stopping what a test worker started never touches the stack's own processes.
  killRecordedOnExit(dir, o.handleSignals ?? false);
  const binDir = info.k8s.binDir;
  for (const b of ['kubelet', 'kube-scheduler']) {
    if (!existsSync(join(binDir, b)))
      throw new Error(`${b} is not in ${binDir}: run bash test/env/build-control-plane.sh`);
  }
  const processes: Managed[] = [];
  let relay: Awaited<ReturnType<typeof startVaultRelay>> | undefined;
  const stop = async () => {
    await drainNode(info);
    for (const p of [...processes].reverse()) await stopProcess(p);
    await relay?.close();
    await cleanupNode(info.dir);
  };
  try {
    const ip = hostIp();
    const root = cgroupRoot(info.dir);
    for (const m of cgroupMounts()) mkdirSync(join(m, root), { recursive: true });
    const tunables = Object.fromEntries(
      KERNEL_TUNABLES.map((t) => [t, readFileSync(join('/proc/sys', t), 'utf8').trim()]),
    );
    writeFileSync(join(dir, 'kernel-tunables.json'), JSON.stringify(tunables));

    // containerd, then the images: both builds share the two cores, and the build is the longer.
    const socket = join(dir, 'containerd', 'containerd.sock');
    writeFileSync(join(dir, 'containerd', 'config.toml'), containerdConfig(dir));
    // Loaded so the runtime reports its network ready; never run, as every pod here uses the host
    // network (a pod that does not fails at sandbox creation: there is no plugin binary).
    writeFileSync(
      join(dir, 'cni', 'conf', '10-host-network-only.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'host-network-only', plugins: [{ type: 'loopback' }] }),
    );
    const containerd = startProcess({
      name: 'containerd',
      command: 'containerd',
      args: ['--config', join(dir, 'containerd', 'config.toml')],
      stateDir: dir,
    });
    processes.push(containerd);
    const images = o.images ?? (await buildImages(join(dir, 'images'), (m) => log(`images: ${m}`)));
    await waitUntil(
      'containerd',
      async () =>
        existsSync(socket) &&
        (await ctr(socket, 'version').then(
          () => true,
          () => false,
        )),
      { timeoutMs: 30_000, process: containerd },
    );
    const importStart = Date.now();
    for (const archive of Object.values(images.archives)) {
      await ctr(socket, 'images', 'import', archive);
      if (!o.images) rmSync(archive);
    }
    const imported = (Date.now() - importStart) / 1000;
    log(`containerd ${socket}: imported ${Object.keys(images.archives).join(', ')} in ${imported.toFixed(1)} s`);

    const [port, healthzPort] = [await freePort(), await freePort()];
    const kubeletDir = join(dir, 'kubelet');
    writeFileSync(
      join(kubeletDir, 'config.yaml'),
      kubeletConfig({ dir, ip, port, healthzPort, caFile: info.k8s.caFile, cgroupRoot: root, socket }),
    );
    writeFileSync(join(kubeletDir, 'kubeconfig'), kubeconfigFor(info, info.k8s.nodeCertFile, info.k8s.nodeKeyFile), {
      mode: 0o600,
    });
    // A Node left by an earlier run would look Ready at once: this kubelet registers afresh.
    const api = adminApi(info);
    await api.deleteNode({ name: NODE_NAME }).catch(() => undefined);
    const kubeletStart = Date.now();
    const kubelet = startProcess({
      name: 'kubelet',
      command: join(binDir, 'kubelet'),
      args: [
        `--config=${join(kubeletDir, 'config.yaml')}`,
        `--kubeconfig=${join(kubeletDir, 'kubeconfig')}`,
        `--root-dir=${join(kubeletDir, 'root')}`,
        `--cert-dir=${join(kubeletDir, 'pki')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${ip}`,
        '--v=1',
      ],
      stateDir: dir,
    });
    processes.push(kubelet);
    // The scheduler and the workload controllers, as the stack's admin (the stack's own
    // kube-controller-manager runs only what the tests without a node need).
    const admin = info.k8s.kubeconfig;
    processes.push(
      startProcess({
        name: 'kube-scheduler',
        command: join(binDir, 'kube-scheduler'),
        args: [`--kubeconfig=${admin}`, '--leader-elect=false', '--secure-port=0'],
        stateDir: dir,
      }),
      startProcess({
        name: 'kube-controller-manager-workloads',
        command: join(binDir, 'kube-controller-manager'),
        args: [
          `--kubeconfig=${admin}`,
          // kube-root-ca.crt in every namespace is what a projected API token volume mounts as ca.crt;
          // the node lifecycle controller lifts the not-ready taint the kubelet registers with.
          '--controllers=deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller',
          `--root-ca-file=${info.k8s.caFile}`,
          '--leader-elect=false',
          '--secure-port=0',
        ],
        stateDir: dir,
      }),
    );
    await waitUntil(`Node ${NODE_NAME} to be Ready`, () => nodeReady(api), {
      timeoutMs: 90_000,
      process: kubelet,
      intervalMs: 250,
    });
    const ready = (Date.now() - kubeletStart) / 1000;
    relay = await startVaultRelay(info.dir, info.azure.keyvaultAddr);
    const total = (Date.now() - started) / 1000;
    log(
      `node ${NODE_NAME} Ready in ${ready.toFixed(1)} s after the kubelet started (${total.toFixed(1)} s in all; kubelet on ${ip}:${port})`,
    );
    return {
      info: {
        name: NODE_NAME,
        ip,
        kubeletPort: port,
        containerdSocket: socket,
        images: { manager: images.manager, provider: images.provider, pause: images.pause },
        vaultIp: relay.ip,
        dir,
      },
      timings: { imagesBuilt: images.seconds, imagesImported: imported, nodeReady: ready, total },
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** Deletes the node's pods so the kubelet stops their containers and unmounts their volumes. */
async function drainNode(info: StackInfo): Promise<void> {
  const api = adminApi(info);
  const pods = async () =>
    (await api.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${NODE_NAME}` }).catch(() => ({ items: [] })))
      .items;
  for (const p of await pods())
    await api
      .deleteNamespacedPod({ name: p.metadata!.name!, namespace: p.metadata!.namespace!, gracePeriodSeconds: 5 })
      .catch(() => undefined);
  const deadline = Date.now() + 30_000;
  while ((await pods()).length && Date.now() < deadline) await sleep(500);
  // Whatever is left (a kubelet already gone): removed from the API; cleanupNode kills its processes.
  for (const p of await pods())
    await api
      .deleteNamespacedPod({ name: p.metadata!.name!, namespace: p.metadata!.namespace!, gracePeriodSeconds: 0 })
      .catch(() => undefined);
}

/**
 * Removes what a node left in a stack folder, whether it stopped or crashed: its processes, the
 * containers (every process in its cgroups) and their shims, mounts, cgroups, the containerd and
 * kubelet state, the Node object, and the kernel settings the kubelet changed. Idempotent.
 */
export async function cleanupNode(stackDir: string): Promise<void> {
  const dir = nodeDir(stackDir);
  if (!existsSync(dir)) return;
  await stopRecorded(dir);
  const root = cgroupRoot(stackDir);
  // Containers (and anything they forked) are in the node's cgroups, whatever their names.
  for (let round = 0; round < 20; round++) {
    const pids = cgroupMounts().flatMap((m) => procsUnder(join(m, root)));
    if (!pids.length) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(100);
  }
  // Shims are in no cgroup of ours: found by the containerd socket they were started for.
  const socket = join(dir, 'containerd', 'containerd.sock');
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (args[0]?.endsWith('containerd-shim-runc-v2') && args.includes(socket)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
      // A killed shim leaves its socket where containerd 1.6 always puts it (shim.SocketAddress).
      const ns = args[args.indexOf('-namespace') + 1] ?? '';
      const id = args[args.indexOf('-id') + 1] ?? '';
      rmSync(
        join(
          '/run/containerd/s',
          createHash('sha256')
            .update(join(socket, ns, id))
            .digest('hex'),
        ),
        { force: true },
      );
    }
  }
  // Mounts under the folder (pods' volumes, containers' root filesystems), deepest first.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  for (const m of cgroupMounts()) removeCgroupTree(join(m, root));
  const tunables = join(dir, 'kernel-tunables.json');
  if (existsSync(tunables)) {
    for (const [t, v] of Object.entries(JSON.parse(readFileSync(tunables, 'utf8')) as Record<string, string>)) {
      try {
        writeFileSync(join('/proc/sys', t), v);
      } catch {
        /* not writable here: nothing was changed either */
      }
    }
    // Restored once: a later clean-up must not put back values someone has set since.
    rmSync(tunables);
  }
  // The device-plugin socket's folder is fixed in the kubelet (not under its root dir).
  rmSync('/var/lib/kubelet/device-plugins/kubelet.sock', { force: true });
  for (const d of ['/var/lib/kubelet/device-plugins', '/var/lib/kubelet']) {
    try {
      rmdirSync(d); // only when empty: never another kubelet's
    } catch {
      /* not empty, or not there */
    }
  }
  const stackFile = join(stackDir, 'stack.json');
  if (existsSync(stackFile)) {
    const api = adminApi(JSON.parse(readFileSync(stackFile, 'utf8')) as StackInfo);
    await api.deleteNode({ name: NODE_NAME }).catch(() => undefined);
  }
  // The logs stay (they are the record of the run); state and images go.
  for (const d of ['containerd', 'kubelet', 'cni', 'images']) rmSync(join(dir, d), { recursive: true, force: true });
}

function procsUnder(cg: string): number[] {
  if (!existsSync(cg)) return [];
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.push(Number(l));
      for (const e of readdirSync(d)) if (statSync(join(d, e)).isDirectory()) walk(join(d, e));
    } catch {
      /* removed meanwhile */
    }
  };
  walk(cg);
  return out;
}

function removeCgroupTree(cg: string): void {
  if (!existsSync(cg)) return;
  for (const e of readdirSync(cg)) {
    const p = join(cg, e);
    try {
      if (statSync(p).isDirectory()) removeCgroupTree(p);
    } catch {
      /* gone */
    }
  }
  try {
    rmdirSync(cg);
  } catch {
    /* still busy: the next cleanup tries again */
  }
}

export interface ContainerMemory {
  /** Resident set size, as the kubelet's summary API reports it (from the container's cgroup). */
  rssBytes: number;
  workingSetBytes: number;
}

/** Memory of each container of a pod on the node, from the kubelet's stats (once it has any). */
export async function podMemory(
  info: StackInfo,
  namespace: string,
  pod: string,
  containers: string[],
  timeoutMs = 60_000,
): Promise<Record<string, ContainerMemory>> {
  const api = adminApi(info);
  type Summary = {
    pods?: {
      podRef: { name: string; namespace: string };
      containers?: { name: string; memory?: { rssBytes?: number; workingSetBytes?: number } }[];
    }[];
  };
  let found: Record<string, ContainerMemory> = {};
  await waitUntil(
    `the kubelet's memory figures of ${namespace}/${pod}`,
    async () => {
      // client-node hands the body back already parsed, though typed as a string.
      const raw: unknown = await api.connectGetNodeProxyWithPath({ name: NODE_NAME, path: 'stats/summary' });
      const summary = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Summary;
      const p = summary.pods?.find((x) => x.podRef.name === pod && x.podRef.namespace === namespace);
      found = Object.fromEntries(
        (p?.containers ?? [])
          .filter((c) => c.memory?.rssBytes !== undefined)
          .map((c) => [c.name, { rssBytes: c.memory!.rssBytes!, workingSetBytes: c.memory!.workingSetBytes ?? 0 }]),
      );
      return containers.every((c) => c in found);
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  return found;
}
