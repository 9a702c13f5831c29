// The MountRequest the manager and the conformance suite send, field by field as the CSI driver
// and the upstream sync controller send it.
import { buildMountRequest, mountAttributes } from '../src/request.js';

const base = {
  parameters: { roleName: 'app', objects: '- objectName: a' },
  pod: { name: 'manager-0', uid: 'uid-1', namespace: 'team-a' },
  serviceAccountName: 'workload',
};

test('the fixed fields: target path /mnt/secrets-store, permission "420", secrets "{}", no versions', () => {
  const r = buildMountRequest(base);
  expect(r).toMatchObject({
    targetPath: '/mnt/secrets-store',
    permission: '420',
    secrets: '{}',
    currentObjectVersion: [],
  });
});

test('attributes: the class parameters plus pod and ServiceAccount keys, sorted like a Go map', () => {
  const attributes = JSON.parse(
    buildMountRequest({ ...base, tokens: { aud: { token: 't', expirationTimestamp: '2026-12-01T00:10:00Z' } } })
      .attributes!,
  ) as Record<string, string>;
  expect(Object.keys(attributes)).toEqual([...Object.keys(attributes)].sort());
  expect(attributes).toEqual({
    roleName: 'app',
    objects: '- objectName: a',
    'csi.storage.k8s.io/pod.name': 'manager-0',
    'csi.storage.k8s.io/pod.uid': 'uid-1',
    'csi.storage.k8s.io/pod.namespace': 'team-a',
    'csi.storage.k8s.io/serviceAccount.name': 'workload',
    'csi.storage.k8s.io/serviceAccount.tokens': '{"aud":{"token":"t","expirationTimestamp":"2026-12-01T00:10:00Z"}}',
  });
});

test('no tokens: no serviceAccount.tokens attribute at all', () => {
  expect(Object.keys(mountAttributes({ ...base, tokens: {} }))).not.toContain(
    'csi.storage.k8s.io/serviceAccount.tokens',
  );
});

test("a class cannot set or spoof the caller's keys (a tokens parameter is dropped, the namespace is the caller's)", () => {
  const a = mountAttributes({
    ...base,
    parameters: {
      ...base.parameters,
      'csi.storage.k8s.io/serviceAccount.tokens': '{"aud":{"token":"forged"}}',
      'csi.storage.k8s.io/pod.namespace': 'kube-system',
    },
  });
  expect(a['csi.storage.k8s.io/serviceAccount.tokens']).toBeUndefined();
  expect(a['csi.storage.k8s.io/pod.namespace']).toBe('team-a');
});

test('the versions last synced travel as current_object_version', () => {
  expect(
    buildMountRequest({ ...base, currentObjectVersions: [{ id: 'secret/a', version: 'v3' }] }).currentObjectVersion,
  ).toEqual([{ id: 'secret/a', version: 'v3' }]);
});
