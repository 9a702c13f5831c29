// containerd for the stack's node, from Debian's packages: its own root, state and socket under the
// node's folder, the stack's own pause image, and runc with cgroupfs. Its shims outlive it, so
// clean-up finds them by the socket they were started for.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PAUSE_IMAGE, type BuiltImages } from './images.js';
import { startProcess, waitUntil, type Managed } from './processes.js';

const run = promisify(execFile);

export const containerdSocket = (dir: string) => join(dir, 'containerd', 'containerd.sock');

export interface RunningContainerd {
  process: Managed;
  socket: string;
  /**
   * Waits until containerd answers, then imports the images' archives (removing each unless told
   * to keep them); returns the seconds the import took.
   */
  importImages(images: BuiltImages, keepArchives: boolean): Promise<number>;
}

/** Starts containerd without waiting for it: the image build may run meanwhile. */
export function startContainerd(dir: string): RunningContainerd {
  const socket = containerdSocket(dir);
  writeFileSync(join(dir, 'containerd', 'config.toml'), containerdConfig(dir));
  const containerd = startProcess({
    name: 'containerd',
    command: 'containerd',
    args: ['--config', join(dir, 'containerd', 'config.toml')],
    stateDir: dir,
  });
  return {
    process: containerd,
    socket,
    async importImages(images, keepArchives) {
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
        if (!keepArchives) rmSync(archive);
      }
      return (Date.now() - importStart) / 1000;
    },
  };
}

/** Kills the shims started for this containerd (they are in no cgroup of the node's) and removes their sockets. */
export function killShims(socket: string): void {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args[0]?.endsWith('containerd-shim-runc-v2') || !args.includes(socket)) continue;
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
      {
        force: true,
      },
    );
  }
}

async function ctr(socket: string, ...args: string[]): Promise<string> {
  return (await run('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { maxBuffer: 16 << 20 })).stdout;
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
