// Writes OCI image archives without a container engine: each layer is an uncompressed tar made
// with tar-stream (fixed owners, modes and times, entries sorted, so the same inputs give the same
// digests), and the archive is an OCI image layout in a tar, which `ctr images import` reads.
// Uncompressed layers: the archive only travels to the local containerd, and gzip would cost more
// time than the bytes it saves.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';

// The types mark every field required; tar-stream fills in what is left out.
type Headers = Partial<Header> & { name: string };

/** One entry of a layer: a path inside the image and where its content comes from. */
export type LayerEntry =
  | { path: string; type: 'directory'; mode?: number; uid?: number; gid?: number }
  | { path: string; type: 'file'; mode?: number; uid?: number; gid?: number; source: string }
  | { path: string; type: 'file'; mode?: number; uid?: number; gid?: number; content: Buffer | string }
  | { path: string; type: 'symlink'; target: string };

export interface ImageConfig {
  entrypoint: string[];
  cmd?: string[];
  env: string[];
  workingDir: string;
  user: string;
  labels?: Record<string, string>;
}

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
}

/** Layer times: a fixed instant, so rebuilding unchanged inputs changes no digest. */
const EPOCH = new Date(0);

/** Every entry under a host folder, as entries under `into` (sorted; symlinks kept as symlinks). */
export function treeEntries(
  hostDir: string,
  into: string,
  opts: { skip?: (relPath: string) => boolean } = {},
): LayerEntry[] {
  const out: LayerEntry[] = [{ path: into, type: 'directory' }];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(hostDir, rel)).sort()) {
      const relPath = rel ? `${rel}/${name}` : name;
      if (opts.skip?.(relPath)) continue;
      const host = join(hostDir, relPath);
      const st = lstatSync(host);
      const path = posix.join(into, relPath);
      if (st.isSymbolicLink()) out.push({ path, type: 'symlink', target: readlinkSync(host) });
      else if (st.isDirectory()) {
        out.push({ path, type: 'directory', mode: 0o755 });
        walk(relPath);
      } else if (st.isFile()) out.push({ path, type: 'file', source: host, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  walk('');
  return out;
}

/** The directories above each entry, so the tar never holds a file whose folder it lacks. */
function withParents(entries: LayerEntry[]): LayerEntry[] {
  const seen = new Set(entries.filter((e) => e.type === 'directory').map((e) => e.path.replace(/^\/+|\/+$/g, '')));
  const parents: LayerEntry[] = [];
  for (const e of entries) {
    const parts = e.path.replace(/^\/+|\/+$/g, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!seen.has(dir)) {
        seen.add(dir);
        parents.push({ path: dir, type: 'directory' });
      }
    }
  }
  // Sorted by path: a parent comes before what it holds, and the order does not depend on the caller.
  return [...parents, ...entries].sort((a, b) =>
    norm(a.path) < norm(b.path) ? -1 : norm(a.path) > norm(b.path) ? 1 : 0,
  );
}
const norm = (p: string) => p.replace(/^\/+|\/+$/g, '');

function entryDone(p: Pack, header: Headers, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (body) p.entry(header as Header, body, done);
    else p.entry(header as Header, done);
  });
}

/** Writes one layer tar to `file` and returns its digest (= diff ID, as it is uncompressed) and size. */
export async function writeLayer(entries: LayerEntry[], file: string): Promise<{ digest: string; size: number }> {
  const p = tarPack();
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(file);
  p.on('data', (chunk) => {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  });
  const written = pipeline(p, out);
  for (const e of withParents(entries)) {
    const name = norm(e.path);
    if (!name) continue;
    const owner = {
      uid: 'uid' in e ? (e.uid ?? 0) : 0,
      gid: 'gid' in e ? (e.gid ?? 0) : 0,
      uname: '',
      gname: '',
      mtime: EPOCH,
    };
    if (e.type === 'directory') await entryDone(p, { name, type: 'directory', mode: e.mode ?? 0o755, ...owner });
    else if (e.type === 'symlink')
      await entryDone(p, { name, type: 'symlink', linkname: e.target, mode: 0o777, ...owner });
    else if ('content' in e)
      await entryDone(p, { name, type: 'file', mode: e.mode ?? 0o644, ...owner }, Buffer.from(e.content));
    else {
      const st = statSync(e.source);
      await new Promise<void>((resolve, reject) => {
        const entry = p.entry(
          { name, type: 'file', mode: e.mode ?? 0o644, size: st.size, ...owner } as Header,
          (err) => (err ? reject(err) : resolve()),
        );
        createReadStream(e.source).on('error', reject).pipe(entry);
      });
    }
  }
  p.finalize();
  await written;
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

function jsonBlob(value: unknown): Blob {
  const bytes = Buffer.from(JSON.stringify(value));
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';
export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
export const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

/** The CPU architectures the images are built for, in OCI's (GOARCH) names. */
export type Arch = 'amd64' | 'arm64';

/** One platform's image: its layer files (bottom first) and configuration. */
export interface PlatformImage {
  architecture: Arch;
  layers: { file: string; digest: string; size: number }[];
  config: ImageConfig;
}

/** The config and manifest blobs of one platform's image. */
function platformBlobs(image: PlatformImage): { config: Blob; manifest: Blob } {
  const config = jsonBlob({
    architecture: image.architecture,
    os: 'linux',
    created: EPOCH.toISOString(),
    config: {
      Entrypoint: image.config.entrypoint,
      Cmd: image.config.cmd,
      Env: image.config.env,
      WorkingDir: image.config.workingDir,
      User: image.config.user,
      Labels: image.config.labels,
    },
    rootfs: { type: 'layers', diff_ids: image.layers.map((l) => l.digest) },
    history: image.layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'test/env/images.ts' })),
  });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: { mediaType: CONFIG_MEDIA_TYPE, digest: config.digest, size: config.size },
    layers: image.layers.map((l) => ({ mediaType: LAYER_MEDIA_TYPE, digest: l.digest, size: l.size })),
  });
  return { config, manifest };
}

/**
 * Writes an OCI image layout as one tar archive: `oci-layout`, `index.json` naming the image, and
 * the blobs (config, manifest, the given layer files). Returns the manifest's digest.
 */
export async function writeImageArchive(o: {
  file: string;
  name: string;
  layers: { file: string; digest: string; size: number }[];
  config: ImageConfig;
  /** Default amd64. */
  architecture?: Arch;
}): Promise<string> {
  return writeMultiPlatformArchive({
    file: o.file,
    name: o.name,
    images: [{ architecture: o.architecture ?? 'amd64', layers: o.layers, config: o.config }],
  });
}

/**
 * Writes one image for several platforms as an OCI image layout in a tar. With one platform,
 * `index.json` names its manifest; with more, it names an image index that lists one manifest per
 * platform (as multi-platform builds are pushed: `skopeo copy --all` pushes the whole index, and
 * `ctr images import` takes the platforms it is asked for). Returns the digest `index.json` names.
 */
export async function writeMultiPlatformArchive(o: {
  file: string;
  name: string;
  images: PlatformImage[];
}): Promise<string> {
  const blobs = o.images.map((image) => ({ image, ...platformBlobs(image) }));
  const descriptors = blobs.map((b) => ({
    mediaType: MANIFEST_MEDIA_TYPE,
    digest: b.manifest.digest,
    size: b.manifest.size,
    platform: { architecture: b.image.architecture, os: 'linux' },
  }));
  const list =
    descriptors.length > 1
      ? jsonBlob({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: descriptors })
      : undefined;
  const top = list ? { mediaType: INDEX_MEDIA_TYPE, digest: list.digest, size: list.size } : descriptors[0]!;
  const tag = o.name.slice(o.name.lastIndexOf(':') + 1);
  const index = {
    schemaVersion: 2,
    mediaType: INDEX_MEDIA_TYPE,
    manifests: [
      // containerd names the imported image by the first; other tools read the second.
      { ...top, annotations: { 'io.containerd.image.name': o.name, 'org.opencontainers.image.ref.name': tag } },
    ],
  };
  const p = tarPack();
  const written = pipeline(p, createWriteStream(o.file));
  const blobPath = (digest: string) => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  const meta = { mode: 0o644, uid: 0, gid: 0, mtime: EPOCH };
  await entryDone(p, { name: 'blobs', type: 'directory', ...meta, mode: 0o755 });
  await entryDone(p, { name: 'blobs/sha256', type: 'directory', ...meta, mode: 0o755 });
  await entryDone(p, { name: 'oci-layout', ...meta }, Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await entryDone(p, { name: 'index.json', ...meta }, Buffer.from(JSON.stringify(index)));
  const added = new Set<string>();
  const json = [...(list ? [list] : []), ...blobs.flatMap((b) => [b.config, b.manifest])];
  for (const blob of json) {
    if (added.has(blob.digest)) continue;
    added.add(blob.digest);
    await entryDone(p, { name: blobPath(blob.digest), ...meta }, blob.bytes);
  }
  for (const l of o.images.flatMap((image) => image.layers)) {
    if (added.has(l.digest)) continue;
    added.add(l.digest);
    await new Promise<void>((resolve, reject) => {
      const entry = p.entry({ name: blobPath(l.digest), size: l.size, ...meta } as Header, (err) =>
        err ? reject(err) : resolve(),
      );
      createReadStream(l.file).on('error', reject).pipe(entry);
    });
  }
  p.finalize();
  await written;
  return top.digest;
}
