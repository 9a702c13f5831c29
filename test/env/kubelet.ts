// The node's kubelet, built from the same k8s.io/kubernetes module as the apiserver, registered as
// Node `stack-node` with the client certificate the control plane issued for it.
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { existsSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_NAME } from './control-plane.js';
import { freePort } from './ports.js';
import { startProcess, waitUntil, type Managed } from './processes.js';
import type { StackInfo } from './stack.js';
import { kubeMinorOf } from './versions.js';

export function adminApi(info: StackInfo): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(info.k8s.kubeconfig);
  return kc.makeApiClient(CoreV1Api);
}

export interface KubeletOptions {
  /** The node's folder. */
  dir: string;
  stack: StackInfo;
  ip: string;
  /** containerd's socket. */
  socket: string;
  cgroupRoot: string;
}

export interface RunningKubelet {
  process: Managed;
  port: number;
  /** Waits until the Node is Ready; returns the seconds since the kubelet started. */
  ready(): Promise<number>;
}

export async function startKubelet(o: KubeletOptions): Promise<RunningKubelet> {
  const info = o.stack;
  const [port, healthzPort] = [await freePort(), await freePort()];
  const kubeletDir = join(o.dir, 'kubelet');
  writeFileSync(
    join(kubeletDir, 'config.yaml'),
    kubeletConfig({
      dir: o.dir,
      ip: o.ip,
      port,
      healthzPort,
      caFile: info.k8s.caFile,
      version: info.k8s.version,
      cgroupRoot: o.cgroupRoot,
      socket: o.socket,
    }),
  );
  writeFileSync(join(kubeletDir, 'kubeconfig'), kubeconfigFor(info, info.k8s.nodeCertFile, info.k8s.nodeKeyFile), {
    mode: 0o600,
  });
  // A Node left by an earlier run would look Ready at once: this kubelet registers afresh.
  const api = adminApi(info);
  await api.deleteNode({ name: NODE_NAME }).catch(() => undefined);
  const started = Date.now();
  const kubelet = startProcess({
    name: 'kubelet',
    command: join(info.k8s.binDir, 'kubelet'),
    args: [
      `--config=${join(kubeletDir, 'config.yaml')}`,
      `--kubeconfig=${join(kubeletDir, 'kubeconfig')}`,
      `--root-dir=${join(kubeletDir, 'root')}`,
      `--cert-dir=${join(kubeletDir, 'pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${o.ip}`,
      // cAdvisor's own containerd client, on the node's socket rather than /run/containerd's, as
      // K3s sets it. 1.27's and 1.30's kubelets take a container's memory (rssBytes in
      // /stats/summary) from cAdvisor only (1.36's from the CRI), and without it cAdvisor knows no
      // container of a pod. Deprecated, but every release here takes it.
      `--containerd=${o.socket}`,
      '--v=1',
    ],
    stateDir: o.dir,
  });
  return {
    process: kubelet,
    port,
    async ready() {
      await waitUntil(`Node ${NODE_NAME} to be Ready`, () => nodeReady(api), {
        timeoutMs: 90_000,
        process: kubelet,
        intervalMs: 250,
      });
      return (Date.now() - started) / 1000;
    },
  };
}

/** What a kubelet leaves outside the node's folder: the device-plugin socket's folder, fixed in the kubelet. */
export function removeKubeletHostFolders(): void {
  rmSync('/var/lib/kubelet/device-plugins/kubelet.sock', { force: true });
  for (const d of ['/var/lib/kubelet/device-plugins', '/var/lib/kubelet']) {
    try {
      rmdirSync(d); // only when empty: never another kubelet's
    } catch {
      /* not empty, or not there */
    }
  }
}

/** Deletes the Node object, when the stack folder still says where its apiserver is. */
export async function deleteNodeObject(stackDir: string): Promise<void> {
  const stackFile = join(stackDir, 'stack.json');
  if (!existsSync(stackFile)) return;
  const api = adminApi(JSON.parse(readFileSync(stackFile, 'utf8')) as StackInfo);
  await api.deleteNode({ name: NODE_NAME }).catch(() => undefined);
}

async function nodeReady(api: CoreV1Api): Promise<boolean> {
  const node = await api.readNode({ name: NODE_NAME });
  return !!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

function kubeletConfig(o: {
  dir: string;
  ip: string;
  port: number;
  healthzPort: number;
  caFile: string;
  version: string;
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
${
  // These machines mount cgroup v1 (hybrid); from 1.31 the kubelet refuses v1 unless told (a field
  // older kubelets do not know).
  kubeMinorOf(o.version) >= 31 ? 'failCgroupV1: false\n' : ''
}failSwapOn: false
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
