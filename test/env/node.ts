// A real node for the local stack: containerd and runc from Debian's packages, the kubelet built
// from the same k8s.io/kubernetes module as the apiserver, registered as Node `stack-node`, plus
// what a cluster with a node runs besides (kube-scheduler; the deployment, replicaset, node
// lifecycle and root-CA publisher controllers). Pods use the host network: no CNI plugin or kube-proxy runs.
// Started on demand (the pod test, `npm run sandbox -- --pod`), so the other tests' stack stays as
// lean as before; everything lives under <stack>/node and is removed again when it stops.
// Its parts: node-host.ts (cgroups, kernel settings), containerd.ts, kubelet.ts, node-network.ts
// (node IP, CNI, the vault relay) and node-cleanup.ts (drain, and removing what a node left).
//
// Host facts this works around, each found on these machines (see README, "The local stack"):
// - cgroup v1 (hybrid): the kubelet refuses it unless `failCgroupV1: false`;
// - no CAP_SYS_RESOURCE in the bounding set: runc cannot lower oom_score_adj below 0
//   ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"), so containerd
//   clamps it (`restrict_oom_score_adj`), as for rootless runtimes;
// - the kubelet refuses a loopback node IP ("nodeIP can't be loopback address"): the node's
//   address is the host's own first non-loopback IPv4, and the kubelet listens only there.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd } from './containerd.js';
import { NODE_NAME } from './control-plane.js';
import { buildImages, type BuiltImages } from './images.js';
import { adminApi, startKubelet } from './kubelet.js';
import { cleanupNode, drainNode } from './node-cleanup.js';
import { cgroupRoot, nodeDir, prepareHost, requireTools } from './node-host.js';
import { hostIp, startRelay, writeHostNetworkCni, type Relay } from './node-network.js';
import { killRecordedOnExit, startProcess, stopProcess, waitUntil, type Managed } from './processes.js';
import type { StackInfo } from './stack.js';
import { controllersFlag } from './versions.js';

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
  /** Where pods reach https://<account>.queue.core.windows.net (hostAliases), like vaultIp. */
  queueIp: string;
  dir: string;
}

export interface StackNode {
  info: NodeInfo;
  /** Seconds each part took to start (for the README's figures). */
  timings: { imagesBuilt: number; imagesImported: number; nodeReady: number; total: number };
  stop(): Promise<void>;
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
  requireBinaries(info.k8s.binDir, info.k8s.version);
  const processes: Managed[] = [];
  let relay: Relay | undefined;
  let queueRelay: Relay | undefined;
  const stop = async () => {
    await drainNode(info);
    for (const p of [...processes].reverse()) await stopProcess(p);
    await relay?.close();
    await queueRelay?.close();
    await cleanupNode(info.dir);
  };
  try {
    const ip = hostIp();
    const root = cgroupRoot(info.dir);
    prepareHost(dir, root);
    writeHostNetworkCni(dir);

    // containerd, then the images: both builds share the two cores, and the build is the longer.
    const containerd = startContainerd(dir);
    processes.push(containerd.process);
    const images = o.images ?? (await buildImages(join(dir, 'images'), (m) => log(`images: ${m}`)));
    const imported = await containerd.importImages(images, !!o.images);
    log(
      `containerd ${containerd.socket}: imported ${Object.keys(images.archives).join(', ')} in ${imported.toFixed(1)} s`,
    );

    const kubelet = await startKubelet({ dir, stack: info, ip, socket: containerd.socket, cgroupRoot: root });
    processes.push(kubelet.process);
    processes.push(...startWorkloadControllers(info, dir));
    const ready = await kubelet.ready();
    relay = await startRelay(info.dir, info.azure.keyvaultAddr, 'vault');
    queueRelay = await startRelay(info.dir, info.azure.queue.addr, 'queue');
    const total = (Date.now() - started) / 1000;
    log(
      `node ${NODE_NAME} Ready in ${ready.toFixed(1)} s after the kubelet started (${total.toFixed(1)} s in all; kubelet on ${ip}:${kubelet.port})`,
    );
    return {
      info: {
        name: NODE_NAME,
        ip,
        kubeletPort: kubelet.port,
        containerdSocket: containerd.socket,
        images: { manager: images.manager, provider: images.provider, pause: images.pause },
        vaultIp: relay.ip,
        queueIp: queueRelay.ip,
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

function requireBinaries(binDir: string, version: string): void {
  for (const b of ['kubelet', 'kube-scheduler']) {
    if (!existsSync(join(binDir, b)))
      throw new Error(`${b} is not in ${binDir}: run K8S_VERSION=${version} bash test/env/build-control-plane.sh`);
  }
}

/**
 * The scheduler and the workload controllers, as the stack's admin (the stack's own
 * kube-controller-manager runs only what the tests without a node need).
 */
function startWorkloadControllers(info: StackInfo, dir: string): Managed[] {
  const binDir = info.k8s.binDir;
  const admin = info.k8s.kubeconfig;
  return [
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
        controllersFlag(info.k8s.version, [
          'deployment-controller',
          'replicaset-controller',
          'root-ca-certificate-publisher-controller',
          'node-lifecycle-controller',
        ]),
        `--root-ca-file=${info.k8s.caFile}`,
        '--leader-elect=false',
        '--secure-port=0',
      ],
      stateDir: dir,
    }),
  ];
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
