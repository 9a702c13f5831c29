// The releases the stack runs: a minor names the patch release this project builds, and each
// release's kube-controller-manager gets controller names it knows.
import { controllersFlag, KUBE_VERSIONS, resolveKubeVersion, servesAdmissionPolicies } from './versions.js';

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
