// The product's two images and the node's pause image, built as OCI archives without a container
// engine or a registry, from the same inputs as deploy/docker/Dockerfile.*: the C/C++ runtime from
// Debian 12's packages, node from the npm registry's node-linux-<arch> package, each process's
// bundle (deploy/bundle.mjs; no node_modules). deploy/test/images.unit.test.ts holds the Dockerfiles to IMAGES,
// DEBIAN_PACKAGES and NODE_VERSION below. Inputs that rarely change (packages, node) are cached
// under ~/.cache/secret-store-sync/images. The bundles are JavaScript only, so one app layer
// serves every architecture; the packages and node are per architecture.
//
//   npm run images [-- --out dist/images --arch amd64,arm64]   the user's command: both images,
//                                           multi-platform, into dist/images (README: Images)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from './control-plane.js';
import {
  treeEntries,
  writeImageArchive,
  writeLayer,
  writeMultiPlatformArchive,
  type Arch,
  type ImageConfig,
  type LayerEntry,
  type PlatformImage,
} from './oci.js';

export const NODE_VERSION = '20.20.2';
export const ARCHS: readonly Arch[] = ['amd64', 'arm64'];
/** The npm registry's package holding node's binary for an architecture. */
export const nodePackage = (arch: Arch) => `node-linux-${arch === 'amd64' ? 'x64' : 'arm64'}`;
/** This machine's architecture: its packages come from the system's apt lists, others from lists of their own. */
export const HOST_ARCH: Arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
/** Where `npm run images` writes, relative to the repository. */
export const DEFAULT_OUT_DIR = join('dist', 'images');
/** What node links against (ldd): glibc, libgcc_s, libstdc++. As distroless's cc image, without the rest. */
export const DEBIAN_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6'];
export const APP_VERSION = (
  parseYaml(readFileSync(join(repoRoot, 'deploy', 'chart', 'secret-store-sync', 'Chart.yaml'), 'utf8')) as {
    appVersion: string;
  }
).appVersion;
export const PAUSE_IMAGE = 'stack.local/pause:1';

export interface ImageSpec {
  /** The npm workspace whose bundle the image holds. */
  workspace: 'controller' | 'provider-azure';
  /** The chart's default repository, so the chart's default image names find these. */
  repository: string;
  dockerfile: string;
  config: ImageConfig;
}

const runtimeEnv = ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production'];
export const IMAGES: Record<'manager' | 'provider', ImageSpec> = {
  manager: {
    workspace: 'controller',
    repository: 'ghcr.io/secret-store-sync/manager',
    dockerfile: 'deploy/docker/Dockerfile.manager',
    config: {
      entrypoint: [
        'node',
        '--max-semi-space-size=4',
        '--max-old-space-size=256',
        '--compact-on-every-full-gc',
        '--v8-pool-size=1',
        '/app/controller/bundle/main.js',
      ],
      env: runtimeEnv,
      workingDir: '/app',
      user: '65532:65532',
    },
  },
  provider: {
    workspace: 'provider-azure',
    repository: 'ghcr.io/secret-store-sync/provider-azure',
    dockerfile: 'deploy/docker/Dockerfile.provider-azure',
    config: {
      entrypoint: [
        'node',
        '--max-semi-space-size=4',
        '--max-old-space-size=256',
        '--v8-pool-size=1',
        '/app/provider-azure/bundle/main.js',
      ],
      env: runtimeEnv,
      workingDir: '/app',
      user: '65532:65532',
    },
  },
};

/** Where each image's files go, in the order of the Dockerfile's final stage (the test compares). */
export function imageLayout(spec: ImageSpec): { layer: 'base' | 'node' | 'app'; to: string; from: string }[] {
  const ws = spec.workspace;
  return [
    { layer: 'base', to: '/', from: `Debian packages ${DEBIAN_PACKAGES.join(' ')}` },
    { layer: 'base', to: '/etc/', from: 'deploy/docker/rootfs/etc' },
    { layer: 'node', to: '/usr/local/bin/node', from: `npm ${nodePackage('amd64')}@${NODE_VERSION}` },
    { layer: 'app', to: `${ws}/`, from: `${ws}/package.json` },
    { layer: 'app', to: `${ws}/bundle`, from: `${ws}/bundle` },
  ];
}

export const cacheRoot = () =>
  join(
    process.env.SSS_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'secret-store-sync'),
    'images',
  );

const sha = (...parts: (string | Buffer)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
};
const run = (cmd: string, args: string[], cwd?: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Builds `dir` with `make` into a temp folder and moves it into place, so a failed build never looks cached. */
function cached(dir: string, make: (tmp: string) => void): string {
  if (existsSync(dir)) return dir;
  mkdirSync(join(dir, '..'), { recursive: true });
  const tmp = mkdtempSync(`${dir}.tmp-`);
  try {
    make(tmp);
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/**
 * apt options for another architecture's packages: lists and cache of their own under the image
 * cache, from the system's sources, so the system's apt state is never changed (no
 * `dpkg --add-architecture`). Refreshed when older than a day, as a point release moves on.
 */
function foreignApt(arch: Arch, log: (m: string) => void): string[] {
  const dir = join(cacheRoot(), `apt-${arch}`);
  const opts = [
    `-o`,
    `APT::Architecture=${arch}`,
    `-o`,
    `APT::Architectures=${arch}`,
    `-o`,
    `Dir::State=${join(dir, 'state')}`,
    `-o`,
    `Dir::State::Lists=${join(dir, 'lists')}`,
    `-o`,
    `Dir::State::status=${join(dir, 'state', 'status')}`,
    `-o`,
    `Dir::Cache=${join(dir, 'cache')}`,
    `-o`,
    'APT::Sandbox::User=root',
  ];
  const stamp = join(dir, 'updated');
  if (existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < 86_400_000) return opts;
  for (const sub of ['state', 'lists/partial', 'cache/archives/partial'])
    mkdirSync(join(dir, sub), { recursive: true });
  if (!existsSync(join(dir, 'state', 'status'))) writeFileSync(join(dir, 'state', 'status'), '');
  log(`apt-get update for ${arch} (lists of its own in ${dir})`);
  try {
    run('apt-get', [...opts, 'update']);
  } catch (e) {
    throw new Error(`apt-get update for ${arch} failed: ${(e as { stderr?: string }).stderr ?? e}`, { cause: e });
  }
  writeFileSync(stamp, '');
  return opts;
}

/** The packages' files for an architecture, unpacked as dpkg would (no maintainer scripts: none of these three needs one). */
function debianRootfs(arch: Arch, log: (m: string) => void): string {
  const apt = arch === HOST_ARCH ? [] : foreignApt(arch, log);
  // The versions apt would install: part of the cache key, so a point release is picked up.
  const versions = DEBIAN_PACKAGES.map(
    (p) => `${p}=${run('apt-cache', [...apt, 'policy', p]).match(/Candidate:\s*(\S+)/)?.[1] ?? '?'}`,
  );
  if (versions.some((v) => v.endsWith('=?') || v.endsWith('=(none)')))
    throw new Error(`apt does not know ${versions.join(' ')} for ${arch}: run apt-get update`);
  return cached(join(cacheRoot(), `debian-${arch}-${sha(versions.join(' '))}`), (tmp) => {
    log(`downloading ${versions.join(' ')} (${arch})`);
    const debs = join(tmp, 'debs');
    mkdirSync(debs);
    // As root, apt would drop to _apt, which may not write here.
    try {
      run('apt-get', [...apt, 'download', '-o', 'APT::Sandbox::User=root', ...versions], debs);
    } catch (e) {
      throw new Error(
        `apt-get download ${versions.join(' ')} (${arch}) failed (no package lists? run apt-get update): ${(e as { stderr?: string }).stderr ?? e}`,
        { cause: e },
      );
    }
    const rootfs = join(tmp, 'rootfs');
    for (const deb of readdirSync(debs).sort()) run('dpkg-deb', ['-x', join(debs, deb), rootfs]);
    writeFileSync(join(tmp, 'packages.txt'), versions.join('\n') + '\n');
  });
}

/** ELF's e_machine for each architecture: another architecture's node cannot be run to check it. */
const ELF_MACHINE: Record<Arch, number> = { amd64: 0x3e, arm64: 0xb7 };
export function elfArch(file: string): Arch | undefined {
  const head = readFileSync(file).subarray(0, 20);
  if (head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = head.readUInt16LE(18);
  return (Object.keys(ELF_MACHINE) as Arch[]).find((a) => ELF_MACHINE[a] === machine);
}

function nodeBinary(arch: Arch, log: (m: string) => void): string {
  const pkg = `${nodePackage(arch)}@${NODE_VERSION}`;
  return join(
    cached(join(cacheRoot(), `node-v${NODE_VERSION}-${arch}`), (tmp) => {
      log(`fetching ${pkg} from the npm registry`);
      const tgz = run('npm', ['pack', pkg, '--silent', '--pack-destination', tmp], tmp).trim().split('\n').pop()!;
      run('tar', ['-xzf', join(tmp, tgz), '-C', tmp, 'package/bin/node']);
      renameSync(join(tmp, 'package', 'bin', 'node'), join(tmp, 'node'));
      rmSync(join(tmp, 'package'), { recursive: true });
      rmSync(join(tmp, tgz));
      if (elfArch(join(tmp, 'node')) !== arch) throw new Error(`${pkg} does not hold an ${arch} ELF binary`);
      if (arch !== HOST_ARCH) return;
      const version = run(join(tmp, 'node'), ['--version']).trim();
      if (version !== `v${NODE_VERSION}`) throw new Error(`${pkg} holds node ${version}`);
    }),
    'node',
  );
}

function pauseBinary(log: (m: string) => void): string {
  const src = join(repoRoot, 'test', 'env', 'pause', 'main.go');
  return join(
    cached(join(cacheRoot(), `pause-${sha(readFileSync(src))}`), (tmp) => {
      log('compiling the pause binary');
      execFileSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', join(tmp, 'pause'), src], {
        env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    }),
    'pause',
  );
}

export interface Layer {
  file: string;
  digest: string;
  size: number;
}

/** A layer cached by a key of its inputs (for the ones that are the same build after build). */
async function cachedLayer(name: string, key: string, entries: () => LayerEntry[]): Promise<Layer> {
  const dir = join(cacheRoot(), 'layers');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${key}.tar`);
  const meta = `${file}.json`;
  if (existsSync(file) && existsSync(meta))
    return { file, ...(JSON.parse(readFileSync(meta, 'utf8')) as { digest: string; size: number }) };
  const tmp = `${file}.tmp-${process.pid}`;
  const written = await writeLayer(entries(), tmp);
  renameSync(tmp, file);
  writeFileSync(meta, JSON.stringify(written));
  return { file, ...written };
}

export interface BuiltImages {
  /** Image name → OCI archive. */
  archives: Record<string, string>;
  manager: string;
  provider: string;
  pause: string;
  /** The architectures each product image holds. */
  archs: Arch[];
  seconds: number;
}

export interface BuildOptions {
  /** The architectures of the product images; default this machine's only (what the local node runs). */
  archs?: readonly Arch[];
  /** Also the node's pause image (the local stack needs it; a user does not). Default true. */
  pause?: boolean;
}

/**
 * The layers under each product image for one architecture: Debian's runtime and /etc, then node
 * (cached). Another node image (a provider of the kit's, say) adds its own app layer on top.
 */
export async function runtimeLayers(arch: Arch, log: (m: string) => void): Promise<Layer[]> {
  const rootfs = join(debianRootfs(arch, log), 'rootfs');
  const etc = join(repoRoot, 'deploy', 'docker', 'rootfs');
  const etcFiles = readdirSync(join(etc, 'etc'))
    .sort()
    .map((f) => `${f}\n${readFileSync(join(etc, 'etc', f), 'utf8')}`);
  const base = await cachedLayer(`base-${arch}`, sha(rootfs, ...etcFiles), () => [
    ...treeEntries(rootfs, '/'),
    ...treeEntries(etc, '/').filter((e) => e.type !== 'directory'),
  ]);
  const node = nodeBinary(arch, log);
  const nodeLayer = await cachedLayer(`node-${arch}`, NODE_VERSION, () => [
    { path: '/usr/local/bin/node', type: 'file', source: node, mode: 0o755 },
  ]);
  return [base, nodeLayer];
}

/** The image's own files (package.json and bundle), the same for every architecture. */
async function appLayer(spec: ImageSpec, file: string): Promise<Layer> {
  const ws = spec.workspace;
  if (!existsSync(join(repoRoot, ws, 'bundle', 'main.js')))
    throw new Error(`${ws}/bundle/main.js is missing after deploy/bundle.mjs`);
  const app: LayerEntry[] = [];
  for (const { to, from } of imageLayout(spec).filter((l) => l.layer === 'app')) {
    const dest = `/app/${to.replace(/\/$/, '')}`;
    if (to.endsWith('/')) app.push({ path: `${dest}/package.json`, type: 'file', source: join(repoRoot, from) });
    else app.push(...treeEntries(join(repoRoot, from), dest));
  }
  return { file, ...(await writeLayer(app, file)) };
}

/** The archive's file name: the repository's last part and the version, e.g. manager-0.1.0.oci.tar. */
export const archiveName = (spec: ImageSpec) => `${spec.repository.split('/').pop()!}-${APP_VERSION}.oci.tar`;

/** The kit's example provider (proto/examples/file-provider.ts) as a third party would ship it. */
export const EXAMPLE_PROVIDER_IMAGE = 'stack.local/example-provider:1';

/**
 * An image of the kit's example provider for this machine's node, bundled (deploy/bundle.mjs
 * proto) on the product images' runtime layers, serving /app/files.json (proto/examples/files.json):
 * `--endpoint` is the caller's.
 */
export async function buildExampleProviderImage(
  outDir: string,
  log: (m: string) => void = (m) => console.error(`[images] ${m}`),
): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  execFileSync(join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-b', 'proto'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  execFileSync(process.execPath, [join(repoRoot, 'deploy', 'bundle.mjs'), 'proto'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const appFile = join(outDir, 'example-provider-app.tar');
  const app = {
    file: appFile,
    ...(await writeLayer(
      [
        ...treeEntries(join(repoRoot, 'proto', 'bundle'), '/app/bundle'),
        { path: '/app/files.json', type: 'file', source: join(repoRoot, 'proto', 'examples', 'files.json') },
      ],
      appFile,
    )),
  };
  const archive = join(outDir, 'example-provider.oci.tar');
  await writeImageArchive({
    file: archive,
    name: EXAMPLE_PROVIDER_IMAGE,
    layers: [...(await runtimeLayers(HOST_ARCH, log)), app],
    config: {
      entrypoint: ['node', '/app/bundle/file-provider.js', '--state=/app/files.json'],
      env: runtimeEnv,
      workingDir: '/app',
      user: '65532:65532',
    },
    architecture: HOST_ARCH,
  });
  rmSync(appFile);
  return archive;
}

/** Builds the archives into `outDir` (the app layers afresh, the rest from the cache). */
export async function buildImages(
  outDir: string,
  log: (m: string) => void = (m) => console.error(`[images] ${m}`),
  opts: BuildOptions = {},
): Promise<BuiltImages> {
  const started = Date.now();
  const archs = [...new Set(opts.archs ?? [HOST_ARCH])];
  mkdirSync(outDir, { recursive: true });
  // As the Dockerfiles' `npx tsc -b proto <workspace> && node deploy/bundle.mjs <workspace>`: bundles from the sources as they are now.
  execFileSync(join(repoRoot, 'node_modules', '.bin', 'tsc'), ['-b', 'proto', 'controller', 'provider-azure'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  execFileSync(process.execPath, [join(repoRoot, 'deploy', 'bundle.mjs'), 'controller', 'provider-azure'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const runtime = new Map<Arch, Layer[]>();
  for (const arch of archs) runtime.set(arch, await runtimeLayers(arch, log));
  const archives: Record<string, string> = {};
  const names = {} as Record<'manager' | 'provider', string>;
  for (const [key, spec] of Object.entries(IMAGES) as ['manager' | 'provider', ImageSpec][]) {
    const appFile = join(outDir, `${key}-app.tar`);
    const app = await appLayer(spec, appFile);
    const name = `${spec.repository}:${APP_VERSION}`;
    const archive = join(outDir, archiveName(spec));
    const config = {
      ...spec.config,
      labels: { 'org.opencontainers.image.source': spec.dockerfile, 'org.opencontainers.image.version': APP_VERSION },
    };
    const images: PlatformImage[] = archs.map((architecture) => ({
      architecture,
      layers: [...runtime.get(architecture)!, app],
      config,
    }));
    await writeMultiPlatformArchive({ file: archive, name, images });
    rmSync(appFile);
    archives[name] = archive;
    names[key] = name;
  }
  if (opts.pause ?? true) archives[PAUSE_IMAGE] = await buildPause(outDir, log);
  const seconds = (Date.now() - started) / 1000;
  log(`built ${Object.keys(archives).join(', ')} (${archs.join(', ')}) in ${seconds.toFixed(1)} s`);
  return { archives, manager: names.manager, provider: names.provider, pause: PAUSE_IMAGE, archs, seconds };
}

/** The node's pause image (this machine's architecture: only the local node runs it). */
async function buildPause(outDir: string, log: (m: string) => void): Promise<string> {
  const pause = pauseBinary(log);
  const pauseLayer = await cachedLayer('pause', sha(readFileSync(pause)), () => [
    { path: '/pause', type: 'file', source: pause, mode: 0o755 },
  ]);
  const file = join(outDir, 'pause.oci.tar');
  await writeImageArchive({
    file,
    name: PAUSE_IMAGE,
    layers: [pauseLayer],
    config: { entrypoint: ['/pause'], env: [], workingDir: '/', user: '65535:65535' },
    architecture: HOST_ARCH,
  });
  return file;
}

function parseArchs(value: string): Arch[] {
  const archs = value.split(',').map((a) => a.trim());
  const bad = archs.find((a) => !(ARCHS as readonly string[]).includes(a));
  if (bad) throw new Error(`--arch takes ${ARCHS.join(', ')} (comma-separated), not '${bad}'`);
  return archs as Arch[];
}

const USAGE = `usage: npm run images [-- --out <folder>] [--arch ${ARCHS.join(',')}]

Builds the manager and provider-azure images as OCI archives, without a container engine: one file
per image, holding every architecture asked for (default: ${ARCHS.join(' and ')}), into <folder>
(default ${DEFAULT_OUT_DIR}). Needs apt-get and dpkg-deb (Debian or Ubuntu) and the npm registry.
Push one with skopeo (README: Images):
  skopeo copy --all oci-archive:${DEFAULT_OUT_DIR}/manager-${APP_VERSION}.oci.tar docker://<registry>/<name>:${APP_VERSION}`;

/** `npm run images`: both product images, multi-platform; prints each archive and what it holds. */
async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, arch: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const out = resolve(values.out ?? join(repoRoot, DEFAULT_OUT_DIR));
  const archs = values.arch ? parseArchs(values.arch) : [...ARCHS];
  const built = await buildImages(out, (m) => console.error(`[images] ${m}`), { archs, pause: false });
  for (const [name, file] of Object.entries(built.archives)) {
    const mb = (statSync(file).size / 1024 / 1024).toFixed(0);
    console.log(`${file}\t${name}\t${built.archs.map((a) => `linux/${a}`).join(',')}\t${mb} MiB`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(`images: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
