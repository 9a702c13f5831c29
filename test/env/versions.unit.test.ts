// The releases the stack runs: a minor names the patch release this project builds, and each
// release's kube-controller-manager gets controller names it knows.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  controllersFlag,
  KUBE_VERSIONS,
  NEWEST_KUBE_VERSION,
  resolveKubeVersion,
  servesAdmissionPolicies,
} from './versions.js';

test('a minor resolves to its built patch release; an exact release is kept; anything else is refused', () => {
  expect(resolveKubeVersion('1.27')).toBe(KUBE_VERSIONS['1.27']);
  expect(resolveKubeVersion('v1.30')).toBe(KUBE_VERSIONS['1.30']);
  expect(resolveKubeVersion('1.29.4')).toBe('1.29.4');
  const saved = process.env.K8S_VERSION;
  try {
    delete process.env.K8S_VERSION;
    expect(resolveKubeVersion(undefined)).toBe(KUBE_VERSIONS['1.36']);
    process.env.K8S_VERSION = '1.27';
    expect(resolveKubeVersion(undefined)).toBe(KUBE_VERSIONS['1.27']);
  } finally {
    if (saved === undefined) delete process.env.K8S_VERSION;
    else process.env.K8S_VERSION = saved;
  }
  expect(() => resolveKubeVersion('latest')).toThrow(/give a minor \(1\.27, 1\.30, 1\.36\) or 1\.N\.P/);
});

test("1.27's controller manager gets the names before 1.28's rename", () => {
  const names = ['garbage-collector-controller', 'namespace-controller', 'root-ca-certificate-publisher-controller'];
  expect(controllersFlag('1.27.16', names)).toBe('--controllers=garbagecollector,namespace,root-ca-cert-publisher');
  expect(controllersFlag('1.28.0', names)).toBe(`--controllers=${names.join(',')}`);
});

test('admission policies are served (v1) from 1.30', () => {
  expect([KUBE_VERSIONS['1.27'], '1.29.9', KUBE_VERSIONS['1.30']].map(servesAdmissionPolicies)).toEqual([
    false,
    false,
    true,
  ]);
});

/** The folder build-control-plane.sh settles on for K8S_VERSION=`v` (a cache that has every binary, so nothing is built). */
function builtFolder(v: string | undefined): { folder: string; error: string } {
  const cache = mkdtempSync(join(tmpdir(), 'sss-versions-'));
  for (const release of Object.values(KUBE_VERSIONS)) {
    const dir = join(cache, 'control-plane', `k8s-${release}-etcd-3.6.16`);
    mkdirSync(dir, { recursive: true });
    for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubelet', 'kube-scheduler']) {
      writeFileSync(join(dir, b), '');
      chmodSync(join(dir, b), 0o755);
    }
  }
  const env: NodeJS.ProcessEnv = { ...process.env, SSS_CACHE_DIR: cache, ETCD_VERSION: '3.6.16' };
  delete env.K8S_VERSION;
  if (v) env.K8S_VERSION = v;
  const run = spawnSync('bash', [fileURLToPath(new URL('build-control-plane.sh', import.meta.url))], {
    env,
    encoding: 'utf8',
  });
  return { folder: run.stdout.trim().split('/').pop() ?? '', error: run.status === 0 ? '' : run.stderr.trim() };
}

test('the build script takes a minor for the release versions.ts names (.ci/run builds 1.27 so), and builds the newest by default', () => {
  for (const [minor, release] of Object.entries(KUBE_VERSIONS))
    expect([minor, builtFolder(minor)]).toEqual([minor, { folder: `k8s-${release}-etcd-3.6.16`, error: '' }]);
  expect(builtFolder(undefined).folder).toBe(`k8s-${NEWEST_KUBE_VERSION}-etcd-3.6.16`);
  expect(builtFolder('1.29').error).toMatch(
    /K8S_VERSION=1\.29: test\/env\/versions\.ts names no release of that minor/,
  );
});
