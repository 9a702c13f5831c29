// Which SecretSync CRD the cluster serves, read from the real CRD files: an operator is told at
// startup when the apiserver will drop status fields the manager writes — on the upstream schema,
// and on an older copy of this product's CRD without the change keys a restarted manager reads back.
import type { ApiextensionsV1Api, V1CustomResourceDefinition } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { KubeClients } from '../src/kube-client.js';
import type { Logger } from '../src/log.js';
import { detectSchema } from '../src/schema.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const crdFile = (path: string) => parseYaml(readFileSync(join(root, path), 'utf8')) as V1CustomResourceDefinition;
const OURS = 'deploy/crds/secret-sync.x-k8s.io_secretsyncs.yaml';
const UPSTREAM = 'test/fixtures/upstream-crds/secret-sync.x-k8s.io_secretsyncs.yaml';

async function detect(crd: V1CustomResourceDefinition) {
  const lines: { level: string; message: string }[] = [];
  const log = {
    info: (message: string) => lines.push({ level: 'info', message }),
    warn: (message: string) => lines.push({ level: 'warn', message }),
  } as unknown as Logger;
  const api = { readCustomResourceDefinition: async () => crd } as unknown as ApiextensionsV1Api;
  const clients = { make: () => api } as unknown as KubeClients;
  return { schema: await detectSchema(clients, log), lines };
}

/** This product's CRD as it was before status.syncedObjectVersions[].changeKey. */
function withoutChangeKey(crd: V1CustomResourceDefinition): V1CustomResourceDefinition {
  const copy = structuredClone(crd);
  for (const v of copy.spec.versions)
    delete v.schema!.openAPIV3Schema!.properties!.status!.properties!.syncedObjectVersions!.items!.properties!
      .changeKey;
  return copy;
}

test("this product's CRD: named at startup, no warning", async () => {
  const { schema, lines } = await detect(crdFile(OURS));
  expect(schema).toBe('secret-store-sync');
  expect(lines).toEqual([{ level: 'info', message: 'SecretSync CRD' }]);
});

test('an older copy without change keys: a warning that says what it costs and what to apply', async () => {
  const { schema, lines } = await detect(withoutChangeKey(crdFile(OURS)));
  expect(schema).toBe('secret-store-sync');
  expect(lines).toHaveLength(1);
  expect(lines[0]!.level).toBe('warn');
  expect(lines[0]!.message).toMatch(/changeKey.*next sync.*Apply deploy\/crds\//);
});

test('the upstream CRD: a warning that names the dropped fields', async () => {
  const { schema, lines } = await detect(crdFile(UPSTREAM));
  expect(schema).toBe('upstream');
  expect(lines).toHaveLength(1);
  expect(lines[0]!.level).toBe('warn');
  expect(lines[0]!.message).toContain('status.syncedObjectVersions are dropped');
});
