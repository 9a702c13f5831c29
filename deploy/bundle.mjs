#!/usr/bin/env node
// Bundles each process into <workspace>/bundle/ with esbuild: what the images run, and what the
// tests, the sandbox and the bench start. One module graph, tree-shaken and minified, instead of
// node_modules' hundreds of files: V8 keeps every loaded module's source in the heap for lazy
// compilation, and @kubernetes/client-node alone is 15 MB of it (bench/README.md: Memory).
// Runs after `tsc -b` (its input is dist/, already type-checked).
//
//   node deploy/bundle.mjs [workspace ...]     (default: controller provider-azure)
//   node deploy/bundle.mjs proto               the kit's example provider (proto/examples/file-provider.ts),
//                                              which the pod test runs as a third-party provider
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Modules that find a .proto file relative to themselves. In a bundle they live in
// <workspace>/bundle/, so each file is copied there (`copy`: from, relative to the module, to, in the
// bundle) and the module's path pointed at the copy: through import.meta.url in an ES module, through
// __bundleDir (the banner's) in a CommonJS one, whose __dirname a bundle does not have. The build
// fails unless each rewrite was applied exactly once: a bundle that would look for the file where it is not.
const NEXT_TO_BUNDLE = [
  {
    module: /[\\/]proto[\\/]dist[\\/]load\.js$/,
    replace: [
      ["new URL('../proto/service.proto', import.meta.url)", "new URL('./service.proto', import.meta.url)"],
      ["new URL('../proto/changes.proto', import.meta.url)", "new URL('./changes.proto', import.meta.url)"],
    ],
    copy: [
      ['../proto/service.proto', 'service.proto'],
      ['../proto/changes.proto', 'changes.proto'],
    ],
  },
  {
    // grpc-health-check (provider only) loads health/v1/health.proto from `${__dirname}/../../proto`.
    module: /[\\/]grpc-health-check[\\/]build[\\/]src[\\/]health\.js$/,
    replace: [
      ['`${__dirname}/../../proto`', '__bundleDir'],
      [
        "path.resolve(__dirname, '../../proto/health/v1/health.proto')",
        "path.resolve(__bundleDir, 'health/v1/health.proto')",
      ],
    ],
    copy: [['../../proto/health/v1/health.proto', 'health/v1/health.proto']],
  },
];
/** The input files that made it into a build's output (esbuild also loads modules tree shaking drops). */
function inputsInOutput(metafile) {
  return [
    ...new Set(
      Object.values(metafile.outputs).flatMap((o) =>
        Object.entries(o.inputs)
          .filter(([, i]) => i.bytesInOutput > 0)
          .map(([f]) => f),
      ),
    ),
  ];
}

function nextToBundle() {
  const seen = new Map(NEXT_TO_BUNDLE.map((r) => [r, []])); // rule → the module files it rewrote
  const plugin = {
    name: 'files-next-to-bundle',
    setup(b) {
      for (const rule of NEXT_TO_BUNDLE) {
        b.onLoad({ filter: rule.module }, (args) => {
          let source = readFileSync(args.path, 'utf8');
          for (const [from, to] of rule.replace) {
            if (source.split(from).length !== 2)
              throw new Error(`${args.path} does not contain ${from} exactly once: update deploy/bundle.mjs`);
            source = source.replace(from, to);
          }
          seen.get(rule).push(args.path);
          return { contents: source, loader: 'js' };
        });
      }
    },
  };
  /** The files to copy for the rewritten modules in the bundle's output, each rule checked to have matched one module. */
  const applied = (metafile) => {
    const inOutput = new Set(inputsInOutput(metafile).map((f) => join(root, f)));
    const used = [...seen].filter(([, paths]) => paths.some((p) => inOutput.has(p)));
    for (const [rule, paths] of used)
      if (paths.length !== 1)
        throw new Error(`${rule.module} matched ${paths.length} modules, expected one: ${paths.join(', ')}`);
    return used.map(([rule, [path]]) => rule.copy.map(([from, to]) => ({ from: join(dirname(path), from), to })));
  };
  return { plugin, applied };
}

/**
 * The licences of the packages in a bundle, from its metafile: the image ships the bundle instead
 * of node_modules, whose LICENSE files would otherwise go with it.
 */
function thirdPartyNotices(metafile) {
  const packages = new Set();
  for (const input of inputsInOutput(metafile)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]);
  }
  const sections = [...packages].sort().map((dir) => {
    const abs = join(root, dir);
    const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
    const file = readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\..*)?$/i.test(f));
    const text = file
      ? readFileSync(join(abs, file), 'utf8').trim()
      : `License: ${typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? 'see the package')}`;
    return `${pkg.name} ${pkg.version}\n${'-'.repeat(72)}\n${text}\n`;
  });
  return `Third-party packages in this bundle (${sections.length}), with their licences.\n\n${sections.join('\n')}`;
}

// CommonJS dependencies call require() for Node's built-ins; an ES module bundle provides it, and
// the folder of the bundle for the files copied next to it.
const BANNER = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  'const require = __createRequire(import.meta.url);',
  "const __bundleDir = __fileURLToPath(new URL('.', import.meta.url));",
].join(' ');
// What each process must have had rewritten: a bundle without it would fail at run time.
const REQUIRED = { controller: 1, 'provider-azure': 2, proto: 2 };
// What each bundle starts from: a process's tsc output, or for proto the kit's example provider
// (TypeScript, which esbuild strips; it imports the kit by name, so the kit comes from proto/dist).
const ENTRIES = { proto: 'examples/file-provider.ts' };

const workspaces = process.argv.length > 2 ? process.argv.slice(2) : ['controller', 'provider-azure'];
for (const workspace of workspaces) {
  const outdir = join(root, workspace, 'bundle');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const files = nextToBundle();
  const { metafile } = await build({
    entryPoints: [join(root, workspace, ENTRIES[workspace] ?? join('dist', 'main.js'))],
    outdir,
    bundle: true,
    splitting: true, // the provider's keys and certificates SDKs stay lazily imported chunks
    format: 'esm',
    platform: 'node',
    target: 'node20',
    banner: { js: BANNER },
    // Whitespace and syntax only: names stay, so stack traces in logs still read.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none', // the licences go whole into THIRD-PARTY-NOTICES.txt instead
    logLevel: 'warning',
    metafile: true,
    plugins: [files.plugin],
  });
  const applied = files.applied(metafile);
  if (applied.length !== (REQUIRED[workspace] ?? 0))
    throw new Error(
      `${workspace}: ${applied.length} of the files-next-to-bundle rewrites were applied, expected ${REQUIRED[workspace] ?? 0}`,
    );
  for (const { from, to } of applied.flat()) {
    mkdirSync(dirname(join(outdir, to)), { recursive: true });
    copyFileSync(from, join(outdir, to));
  }
  writeFileSync(join(outdir, 'THIRD-PARTY-NOTICES.txt'), thirdPartyNotices(metafile));
}
