#!/usr/bin/env node
// Bundles each process into <workspace>/bundle/ with esbuild: what the images run, and what the
// tests, the sandbox and the bench start. One module graph, tree-shaken and minified, instead of
// node_modules' hundreds of files: V8 keeps every loaded module's source in the heap for lazy
// compilation, and @kubernetes/client-node alone is 15 MB of it (bench/README.md: Memory).
// Runs after `tsc -b` (its input is dist/, already type-checked).
//
//   node deploy/bundle.mjs [workspace ...]     (default: controller provider-azure)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// grpc-health-check finds its .proto from __dirname, which an ES module bundle does not have: it
// stays a package in node_modules. Only the provider serves health; the manager loads nothing from
// node_modules (proto/package.json's sideEffects: false lets the bundle drop the server side).
const EXTERNAL = ['grpc-health-check'];

// Our proto package finds service.proto relative to its own module; in a bundle that module
// lives in <workspace>/bundle/, so the file is copied next to it and the path pointed there. The
// build fails if the path was not found (a bundle that would look for ../proto at run time).
const PROTO_URL = "new URL('../proto/service.proto', import.meta.url)";
function protoNextToBundle() {
  const seen = { count: 0 };
  const plugin = {
    name: 'proto-next-to-bundle',
    setup(b) {
      b.onLoad({ filter: /[\\/]proto[\\/]dist[\\/]load\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes(PROTO_URL)) throw new Error(`${args.path} no longer contains ${PROTO_URL}: update deploy/bundle.mjs`);
        seen.count++;
        return { contents: source.replace(PROTO_URL, "new URL('./service.proto', import.meta.url)"), loader: 'js' };
      });
    },
  };
  return { plugin, seen };
}

/**
 * The licences of the packages in a bundle, from its metafile: the image ships the bundle instead
 * of node_modules, whose LICENSE files would otherwise go with it.
 */
function thirdPartyNotices(metafile) {
  const packages = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]);
  }
  const sections = [...packages].sort().map((dir) => {
    const abs = join(root, dir);
    const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
    const file = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\..*)?$/i.test(f));
    const text = file ? readFileSync(join(abs, file), 'utf8').trim() : `License: ${typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? 'see the package')}`;
    return `${pkg.name} ${pkg.version}\n${'-'.repeat(72)}\n${text}\n`;
  });
  return `Third-party packages in this bundle (${sections.length}), with their licences.\n\n${sections.join('\n')}`;
}

// CommonJS dependencies call require() for Node's built-ins; an ES module bundle provides it.
const BANNER = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

const workspaces = process.argv.length > 2 ? process.argv.slice(2) : ['controller', 'provider-azure'];
for (const workspace of workspaces) {
  const outdir = join(root, workspace, 'bundle');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const proto = protoNextToBundle();
  const { metafile } = await build({
    entryPoints: [join(root, workspace, 'dist', 'main.js')],
    outdir,
    bundle: true,
    splitting: true, // the provider's keys and certificates SDKs stay lazily imported chunks
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: BANNER },
    // Whitespace and syntax only: names stay, so stack traces in logs still read.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none', // the licences go whole into THIRD-PARTY-NOTICES.txt instead
    logLevel: 'warning',
    metafile: true,
    plugins: [proto.plugin],
  });
  if (proto.seen.count !== 1) throw new Error(`${workspace}: proto/dist/load.js was bundled ${proto.seen.count} times, expected once`);
  copyFileSync(join(root, 'proto', 'proto', 'service.proto'), join(outdir, 'service.proto'));
  writeFileSync(join(outdir, 'THIRD-PARTY-NOTICES.txt'), thirdPartyNotices(metafile));
}
