// The host as the node uses it: its tools, the node's folder and cgroup root, the cgroup
// hierarchies, and the kernel settings the kubelet rewrites (saved before it starts, put back after).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { sleep } from './processes.js';

/** Kernel settings the kubelet rewrites at start (it has no option to leave them); put back by cleanupNode. */
const KERNEL_TUNABLES = ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'];

export const nodeDir = (stackDir: string) => join(stackDir, 'node');
/** The node's cgroup root: one per stack folder, so two stacks on a machine never share pods' cgroups. */
export const cgroupRoot = (stackDir: string) =>
  `/sss-${createHash('sha256').update(nodeDir(stackDir)).digest('hex').slice(0, 10)}`;

/** The cgroup hierarchies mounted here (v1 controllers, the named systemd one, the unified one). */
export function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => f[1]!);
}

export function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error('the node (kubelet, containerd) runs as root; run the tests as root');
  const missing = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length) throw new Error(`the node needs ${missing.join(', ')}: apt-get install -y containerd runc`);
}

/** The node's cgroups in every hierarchy, and a note of the kernel settings before the kubelet changes them. */
export function prepareHost(dir: string, root: string): void {
  for (const m of cgroupMounts()) mkdirSync(join(m, root), { recursive: true });
  const tunables = Object.fromEntries(
    KERNEL_TUNABLES.map((t) => [t, readFileSync(join('/proc/sys', t), 'utf8').trim()]),
  );
  writeFileSync(join(dir, 'kernel-tunables.json'), JSON.stringify(tunables));
}

/** Puts back the kernel settings prepareHost noted. */
export function restoreKernelTunables(dir: string): void {
  const tunables = join(dir, 'kernel-tunables.json');
  if (!existsSync(tunables)) return;
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

/** Kills every process in the node's cgroups: containers, and anything they forked, whatever their names. */
export async function killCgroupProcesses(root: string): Promise<void> {
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
}

/** Removes the node's cgroups in every hierarchy (those still busy stay for the next clean-up). */
export function removeCgroups(root: string): void {
  for (const m of cgroupMounts()) removeCgroupTree(join(m, root));
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
