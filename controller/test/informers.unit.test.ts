// What the informer cache keeps of an object: everything the manager reads, without the
// apiserver's field-ownership bookkeeping and kubectl's copy of the last applied manifest.
import { slim } from '../src/informers.js';

test('slim drops managedFields and the last-applied annotation, and keeps the rest', () => {
  const o = {
    apiVersion: 'secret-sync.x-k8s.io/v1alpha1',
    kind: 'SecretSync',
    metadata: {
      name: 'a', namespace: 'n', uid: 'u', generation: 2, resourceVersion: '7',
      labels: { app: 'x' },
      annotations: { keep: 'me', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' },
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    },
    spec: { serviceAccountName: 'sa' },
    status: { syncHash: 'h' },
  };
  const s = slim(o);
  expect(s).toEqual({ ...o, metadata: { name: 'a', namespace: 'n', uid: 'u', generation: 2, resourceVersion: '7', labels: { app: 'x' }, annotations: { keep: 'me' } } });
  // The input is not changed (a watch event's object may be shared).
  expect(o.metadata.managedFields).toHaveLength(1);
});

test('slim returns an object without either as it is', () => {
  const o = { metadata: { name: 'a', annotations: { keep: 'me' } } };
  expect(slim(o)).toBe(o);
});
