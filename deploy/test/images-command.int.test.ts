// `npm run images`, the user's command: both product images as multi-platform OCI archives. The
// archives are read as a registry client would (index, per-platform manifest and config, every
// blob's digest), loaded the way the pod test loads its images (`ctr images import` into a
// containerd of the test's own, where each image's entrypoint runs), and pushed as README says,
// with skopeo, to a registry on loopback (Debian's docker-registry, the CNCF distribution registry).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../test/env/control-plane.js';
import { APP_VERSION, ARCHS, archiveName, elfArch, HOST_ARCH, IMAGES, type ImageSpec } from '../../test/env/images.js';
import { INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, type Arch } from '../../test/env/oci.js';
import { freePort } from '../../test/env/ports.js';
import { startProcess, stopProcess, waitUntil, type Managed } from '../../test/env/processes.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'images-command-'));
const out = join(dir, 'out');
let stdout = '';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}
interface Manifest {
  config: Descriptor;
  layers: Descriptor[];
}
interface Config {
  architecture: string;
  os: string;
  config: { Entrypoint: string[]; User: string; WorkingDir: string; Env: string[] };
  rootfs: { diff_ids: string[] };
}

/** An archive unpacked: its JSON files and blobs, each blob checked against its digest and size. */
function unpack(archive: string) {
  const root = join(dir, `${archive.split('/').pop()}.d`);
  mkdirSync(root);
  execFileSync('tar', ['-xf', archive, '-C', root]);
  const blobFile = (d: Descriptor) => {
    const file = join(root, 'blobs', 'sha256', d.digest.slice('sha256:'.length));
    const bytes = readFileSync(file);
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(d.digest);
    expect(bytes.length).toBe(d.size);
    return file;
  };
  const json = <T>(d: Descriptor) => JSON.parse(readFileSync(blobFile(d), 'utf8')) as T;
  return { root, blobFile, json };
}

beforeAll(() => {
  const r = spawnSync('npm', ['run', '--silent', 'images', '--', '--out', out], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 600_000,
  });
  stdout = r.stdout;
  if (r.status !== 0) throw new Error(`npm run images exited ${r.status}:\n${r.stderr}`);
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('it prints each archive it writes: file, image name, platforms, size', () => {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(2);
  for (const [i, spec] of [IMAGES.manager, IMAGES.provider].entries()) {
    const [file, name, platforms, size] = lines[i]!.split('\t');
    expect(file).toBe(join(out, archiveName(spec)));
    expect(existsSync(file!)).toBe(true);
    expect(name).toBe(`${spec.repository}:${APP_VERSION}`);
    expect(platforms).toBe(ARCHS.map((a) => `linux/${a}`).join(','));
    expect(size).toMatch(/^\d+ MiB$/);
  }
});

describe.each(Object.entries(IMAGES))('the %s archive', (_key, spec: ImageSpec) => {
  test('is an OCI layout: an index naming the image, one manifest per architecture, each config with its platform and entrypoint', () => {
    const { root, blobFile, json } = unpack(join(out, archiveName(spec)));
    expect(JSON.parse(readFileSync(join(root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    expect(index.manifests).toHaveLength(1);
    const top = index.manifests[0]!;
    expect(top.mediaType).toBe(INDEX_MEDIA_TYPE);
    expect(top.annotations).toEqual({
      'io.containerd.image.name': `${spec.repository}:${APP_VERSION}`,
      'org.opencontainers.image.ref.name': APP_VERSION,
    });
    const platforms = json<{ manifests: Descriptor[] }>(top).manifests;
    expect(platforms.map((m) => m.platform)).toEqual(ARCHS.map((architecture) => ({ architecture, os: 'linux' })));
    for (const m of platforms) {
      expect(m.mediaType).toBe(MANIFEST_MEDIA_TYPE);
      const arch = m.platform!.architecture as Arch;
      const manifest = json<Manifest>(m);
      const config = json<Config>(manifest.config);
      expect(config).toMatchObject({ architecture: arch, os: 'linux' });
      expect(config.config).toMatchObject({
        Entrypoint: spec.config.entrypoint,
        User: spec.config.user,
        WorkingDir: spec.config.workingDir,
        Env: spec.config.env,
      });
      // Uncompressed layers: each layer's digest is its diff ID.
      expect(config.rootfs.diff_ids).toEqual(manifest.layers.map((l) => l.digest));
      const [base, node] = manifest.layers.map(blobFile);
      // The loader node asks for is in this platform's base layer, and node is this platform's binary.
      const loader = arch === 'amd64' ? 'lib64/ld-linux-x86-64.so.2' : 'lib/ld-linux-aarch64.so.1';
      expect(execFileSync('tar', ['-tf', base!], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')).toContain(
        loader,
      );
      const nodeDir = join(root, `node-${arch}`);
      mkdirSync(nodeDir);
      execFileSync('tar', ['-xf', node!, '-C', nodeDir, 'usr/local/bin/node']);
      expect(elfArch(join(nodeDir, 'usr', 'local', 'bin', 'node'))).toBe(arch);
    }
  });
});

describe('loaded as the pod test loads images (ctr images import)', () => {
  const state = join(dir, 'containerd');
  const socket = join(state, 'containerd.sock');
  let containerd: Managed | undefined;
  const ctr = async (...args: string[]) =>
    (await run('ctr', ['--address', socket, '--namespace', 'images-command', ...args], { maxBuffer: 16 << 20 })).stdout;

  beforeAll(async () => {
    mkdirSync(state, { recursive: true });
    // Only what import and run need: no CRI plugin, no listeners but the socket.
    writeFileSync(
      join(state, 'config.toml'),
      [
        'version = 2',
        `root = "${state}/root"`,
        `state = "${state}/state"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        `[grpc]\n  address = "${socket}"`,
        '[ttrpc]\n  address = ""',
        '[debug]\n  address = ""',
        '[metrics]\n  address = ""',
        `[plugins."io.containerd.internal.v1.opt"]\n  path = "${state}/opt"`,
      ].join('\n'),
    );
    containerd = startProcess({
      name: 'containerd',
      command: 'containerd',
      args: ['--config', join(state, 'config.toml')],
      stateDir: state,
    });
    await waitUntil('containerd', async () => existsSync(socket) && (await ctr('version').then(() => true)), {
      timeoutMs: 30_000,
      process: containerd,
    });
  });
  afterAll(async () => {
    if (containerd) await stopProcess(containerd);
  });

  test.each(Object.entries(IMAGES))(
    'the %s image imports with both platforms, and its entrypoint runs here',
    async (key, spec: ImageSpec) => {
      const name = `${spec.repository}:${APP_VERSION}`;
      await ctr('images', 'import', '--all-platforms', join(out, archiveName(spec)));
      const listed = (await ctr('images', 'ls')).split('\n').find((l) => l.startsWith(`${name} `));
      expect(listed).toContain(ARCHS.map((a) => `linux/${a}`).join(','));
      // ctr run replaces the image's arguments: give the entrypoint itself, plus --help.
      const help = await ctr('run', '--rm', name, `help-${key}`, ...spec.config.entrypoint, '--help');
      expect(help).toMatch(/usage/i);
      const who = await ctr('run', '--rm', name, `who-${key}`, 'node', '-p', 'process.getuid() + " " + process.arch');
      expect(who.trim()).toBe(`${spec.config.user.split(':')[0]} ${HOST_ARCH === 'amd64' ? 'x64' : 'arm64'}`);
    },
  );
});

describe('pushed as README says: skopeo copy --all oci-archive:… docker://…', () => {
  const state = join(dir, 'registry');
  let registry: Managed | undefined;
  let address = '';

  beforeAll(async () => {
    mkdirSync(state, { recursive: true });
    address = `127.0.0.1:${await freePort()}`;
    writeFileSync(
      join(state, 'config.yml'),
      `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${state}/data\nhttp:\n  addr: ${address}\n`,
    );
    registry = startProcess({
      name: 'registry',
      command: 'docker-registry',
      args: ['serve', join(state, 'config.yml')],
      stateDir: state,
    });
    await waitUntil('the registry', async () => (await fetch(`http://${address}/v2/`)).ok, {
      timeoutMs: 30_000,
      process: registry,
    });
  });
  afterAll(async () => {
    if (registry) await stopProcess(registry);
  });

  test("README's push commands, with only the registry and folder changed, push both images with both platforms", async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const block = [...readme.matchAll(/```bash\n(skopeo copy --all [^]*?)```/g)].map((m) => m[1]!)[0]!;
    // A registry on loopback without TLS, and this test's folder.
    const script = block
      .replaceAll('registry.example.com', address)
      .replaceAll('skopeo copy --all ', 'skopeo copy --all --dest-tls-verify=false ')
      .replaceAll('oci-archive:dist/images/', `oci-archive:${out}/`);
    const pushed = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8' });
    expect({ status: pushed.status, stderr: pushed.stderr }).toMatchObject({ status: 0 });
    for (const spec of [IMAGES.manager, IMAGES.provider]) {
      const ref = `docker://${address}/secret-store-sync/${spec.repository.split('/').pop()}:${APP_VERSION}`;
      expect(block).toContain(
        `oci-archive:dist/images/${archiveName(spec)} docker://registry.example.com/secret-store-sync/`,
      );
      const list = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ref])).stdout) as {
        mediaType: string;
        manifests: Descriptor[];
      };
      expect(list.mediaType).toBe(INDEX_MEDIA_TYPE);
      expect(list.manifests.map((m) => m.platform)).toEqual(
        ARCHS.map((architecture) => ({ architecture, os: 'linux' })),
      );
      for (const arch of ARCHS) {
        const inspected = JSON.parse(
          (await run('skopeo', ['inspect', '--tls-verify=false', '--override-arch', arch, ref])).stdout,
        ) as { Architecture: string; Os: string; Labels: Record<string, string> };
        expect(inspected).toMatchObject({ Architecture: arch, Os: 'linux' });
        expect(inspected.Labels['org.opencontainers.image.version']).toBe(APP_VERSION);
      }
    }
  });
});
