// Taking the node down: its pods drained while the kubelet runs, then whatever a node left in a
// stack folder removed, whether it stopped or crashed.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { containerdSocket, killShims } from './containerd.js';
import { NODE_NAME } from './control-plane.js';
import { adminApi, deleteNodeObject, removeKubeletHostFolders } from './kubelet.js';
import { cgroupRoot, killCgroupProcesses, nodeDir, removeCgroups, restoreKernelTunables } from './node-host.js';
import { sleep, stopRecorded } from './processes.js';
import type { StackInfo } from './stack.js';

/** Deletes the node's pods so the kubelet stops their containers and unmounts their volumes. */
export async function drainNode(info: StackInfo): Promise<void> {
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
  await killCgroupProcesses(root);
  killShims(containerdSocket(dir));
  unmountUnder(dir);
  removeCgroups(root);
  restoreKernelTunables(dir);
  removeKubeletHostFolders();
  await deleteNodeObject(stackDir);
  // The logs stay (they are the record of the run); state and images go.
  for (const d of ['containerd', 'kubelet', 'cni', 'images']) rmSync(join(dir, d), { recursive: true, force: true });
}

/** Unmounts what is mounted under the folder (pods' volumes, containers' root filesystems), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}
