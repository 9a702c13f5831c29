// What the informer cache keeps of an object: everything the manager reads, without the
// apiserver's field-ownership bookkeeping and kubectl's copy of the last applied manifest.
import { slim, StringTable } from '../src/informers.js';

test('slim drops managedFields and the last-applied annotation, and keeps the rest', () => {
  const o = {
    apiVersion: 'secret-sync.x-k8s.io/v1alpha1',
    kind: 'SecretSync',
    metadata: {
      name: 'a',
      namespace: 'n',
      uid: 'u',
      generation: 2,
      resourceVersion: '7',
      labels: { app: 'x' },
      annotations: { keep: 'me', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' },
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    },
    spec: { serviceAccountName: 'sa' },
    status: { syncHash: 'h' },
  };
  const s = slim(o);
  expect(s).toEqual({
    ...o,
    metadata: {
      name: 'a',
      namespace: 'n',
      uid: 'u',
      generation: 2,
      resourceVersion: '7',
      labels: { app: 'x' },
      annotations: { keep: 'me' },
    },
  });
  // The input is not changed (a watch event's object may be shared).
  expect(o.metadata.managedFields).toHaveLength(1);
});

test('slim returns an object without either as it is', () => {
  const o = { metadata: { name: 'a', annotations: { keep: 'me' } } };
  expect(slim(o)).toBe(o);
});

test('slim keeps every value equal when it shares strings, and the string table stays bounded', () => {
  const table = new StringTable(100, 256);
  const make = (i: number) => ({
    apiVersion: 'secret-sync.x-k8s.io/v1alpha1',
    metadata: { name: `s-${i}`, namespace: 'n', uid: `uid-${i}`, resourceVersion: String(i) },
    spec: { secretProviderClassName: 'spc', secretObject: { data: [{ sourcePath: 'a', targetKey: `k-${i}` }] } },
    status: {
      conditions: [
        {
          type: 'Ready',
          reason: 'UpdateNoValueChangeSucceeded',
          message: 'x'.repeat(300),
          lastTransitionTime: `2026-12-02T00:00:${String(i % 60).padStart(2, '0')}Z`,
        },
      ],
    },
  });
  for (let i = 0; i < 1000; i++) {
    const o = make(i);
    expect(slim(o, table)).toEqual(make(i));
    expect(table.size).toBeLessThanOrEqual(100);
  }
  // Shared values are in the table; values unique to one object (uid, resourceVersion, name) and long ones are not.
  expect(table.intern('UpdateNoValueChangeSucceeded')).toBe('UpdateNoValueChangeSucceeded');
  const before = table.size;
  table.intern('UpdateNoValueChangeSucceeded');
  table.intern('spc');
  expect(table.size).toBe(before);
});
