// Proves the control plane is the real thing: CRDs, server-side apply, TokenRequest with OIDC
// discovery, garbage collection, ValidatingAdmissionPolicy and OwnerReferencesPermissionEnforcement.
import {
  PatchStrategy,
  setHeaderOptions,
  RbacAuthorizationV1Api,
  AdmissionregistrationV1Api,
  ApisApi,
  KubeConfig,
  CoreV1Api,
} from '@kubernetes/client-node';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { loadStackInfo } from '../env/stack.js';
import { servesAdmissionPolicies } from '../env/versions.js';
import { apiStatus, eventually, kube, tempNamespace } from '../helpers/kube.js';

const GROUP = 'smoke.secret-store-sync.test';
const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const k = kube();
const info = loadStackInfo();
let ns: Awaited<ReturnType<typeof tempNamespace>>;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'smoke-k8s');
});
afterAll(async () => {
  await ns.dispose();
});

function anonymousGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: readFileSync(loadStackInfo().caFile) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a CRD is established and a custom object round-trips, with its status subresource', async () => {
  const created = await k.custom.createNamespacedCustomObject({
    group: GROUP,
    version: 'v1',
    namespace: ns.name,
    plural: 'widgets',
    body: {
      apiVersion: `${GROUP}/v1`,
      kind: 'Widget',
      metadata: { name: 'w1' },
      spec: { size: 3 },
      status: { phase: 'ignored' },
    },
  });
  expect(created.spec).toEqual({ size: 3 });
  expect(created.status).toBeUndefined(); // status is a subresource: ignored on create
  await k.custom.patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: 'v1',
      namespace: ns.name,
      plural: 'widgets',
      name: 'w1',
      fieldManager: 'smoke',
      force: true,
      body: { apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: 'w1' }, status: { phase: 'Ready' } },
    },
    SSA,
  );
  const read = await k.custom.getNamespacedCustomObject({
    group: GROUP,
    version: 'v1',
    namespace: ns.name,
    plural: 'widgets',
    name: 'w1',
  });
  expect(read.status).toEqual({ phase: 'Ready' });
  // The CRD's schema is enforced by the apiserver.
  await expect(
    k.custom.createNamespacedCustomObject({
      group: GROUP,
      version: 'v1',
      namespace: ns.name,
      plural: 'widgets',
      body: { apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: 'bad' }, spec: { size: 0 } },
    }),
  ).rejects.toMatchObject({ code: 422 });
});

test('a Secret is written with server-side apply and records its field manager', async () => {
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'ssa', namespace: ns.name },
    type: 'Opaque',
    stringData: { k: 'v1' },
  };
  await k.core.patchNamespacedSecret(
    { name: 'ssa', namespace: ns.name, fieldManager: 'smoke-manager', force: true, body },
    SSA,
  );
  await k.core.patchNamespacedSecret(
    {
      name: 'ssa',
      namespace: ns.name,
      fieldManager: 'smoke-manager',
      force: true,
      body: { ...body, stringData: { k: 'v2' } },
    },
    SSA,
  );
  const s = await k.core.readNamespacedSecret({ name: 'ssa', namespace: ns.name });
  expect(Buffer.from(s.data?.k ?? '', 'base64').toString()).toBe('v2');
  expect(s.metadata?.managedFields?.find((m) => m.manager === 'smoke-manager')?.operation).toBe('Apply');
});

test('TokenRequest mints a service-account JWT that verifies against the anonymously served OIDC keys', async () => {
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: 'workload',
    namespace: ns.name,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
  });
  const token = tr.status?.token ?? '';
  const issuer = loadStackInfo().k8s.issuer;
  const discovery = await anonymousGet(`${issuer}/.well-known/openid-configuration`);
  expect(discovery.status).toBe(200);
  const { jwks_uri } = JSON.parse(discovery.body) as { jwks_uri: string };
  const jwks = await anonymousGet(jwks_uri);
  expect(jwks.status).toBe(200);
  const { payload } = await jwtVerify(token, createLocalJWKSet(JSON.parse(jwks.body) as JSONWebKeySet), {
    issuer,
    audience: 'api://AzureADTokenExchange',
  });
  expect(payload.sub).toBe(`system:serviceaccount:${ns.name}:workload`);
  expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(600);
});

test('deleting an owner garbage-collects what it owns (kube-controller-manager runs)', async () => {
  const owner = await k.custom.createNamespacedCustomObject({
    group: GROUP,
    version: 'v1',
    namespace: ns.name,
    plural: 'widgets',
    body: { apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name: 'owner' }, spec: { size: 1 } },
  });
  await k.core.createNamespacedConfigMap({
    namespace: ns.name,
    body: {
      metadata: {
        name: 'owned',
        ownerReferences: [{ apiVersion: `${GROUP}/v1`, kind: 'Widget', name: 'owner', uid: owner.metadata.uid }],
      },
      data: { a: 'b' },
    },
  });
  await k.custom.deleteNamespacedCustomObject({
    group: GROUP,
    version: 'v1',
    namespace: ns.name,
    plural: 'widgets',
    name: 'owner',
  });
  await eventually(
    async () => {
      const status = await k.core
        .readNamespacedConfigMap({ name: 'owned', namespace: ns.name })
        .then(() => 200, apiStatus);
      return status === 404 ? true : undefined;
    },
    60_000,
    'the owned ConfigMap to be garbage-collected',
  );
});

test('a ValidatingAdmissionPolicy denies a request (before 1.30: the API is not served, as the chart assumes)', async () => {
  if (!servesAdmissionPolicies(info.k8s.version)) {
    const groups = await k.kc.makeApiClient(ApisApi).getAPIVersions();
    const admission = groups.groups.find((g) => g.name === 'admissionregistration.k8s.io');
    expect(admission?.versions.map((v) => v.version)).not.toContain('v1beta1');
    const v1 = await k.kc.makeApiClient(AdmissionregistrationV1Api).getAPIResources();
    expect(v1.resources.map((r) => r.kind)).not.toContain('ValidatingAdmissionPolicy');
    return;
  }
  const adm = k.kc.makeApiClient(AdmissionregistrationV1Api);
  const name = `smoke-deny-${ns.name}`;
  await adm.createValidatingAdmissionPolicy({
    body: {
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
        },
        validations: [
          {
            expression: "!has(object.metadata.labels) || !('smoke/deny' in object.metadata.labels)",
            message: 'smoke: labelled objects are refused',
          },
        ],
      },
    },
  });
  await adm.createValidatingAdmissionPolicyBinding({
    body: {
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } } },
      },
    },
  });
  try {
    // Bindings take effect asynchronously; retry a dry run until the policy bites.
    const message = await eventually(
      async () => {
        try {
          await k.core.createNamespacedConfigMap({
            namespace: ns.name,
            dryRun: 'All',
            body: { metadata: { name: 'x', labels: { 'smoke/deny': 'yes' } } },
          });
          return undefined;
        } catch (e) {
          return apiStatus(e) === 422 ? String((e as { body?: string }).body) : undefined;
        }
      },
      30_000,
      'the policy to deny',
    );
    expect(message).toContain('smoke: labelled objects are refused');
    // Unlabelled objects still pass.
    await k.core.createNamespacedConfigMap({ namespace: ns.name, dryRun: 'All', body: { metadata: { name: 'y' } } });
  } finally {
    await adm.deleteValidatingAdmissionPolicyBinding({ name });
    await adm.deleteValidatingAdmissionPolicy({ name });
  }
});

test('OwnerReferencesPermissionEnforcement refuses ownerRef changes by a caller that cannot delete', async () => {
  const rbac = k.kc.makeApiClient(RbacAuthorizationV1Api);
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'limited' } } });
  await rbac.createNamespacedRole({
    namespace: ns.name,
    body: {
      metadata: { name: 'cm-writer' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'patch'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns.name,
    body: {
      metadata: { name: 'cm-writer' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-writer' },
      subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace: ns.name }],
    },
  });
  const owner = await k.core.createNamespacedConfigMap({
    namespace: ns.name,
    body: { metadata: { name: 'the-owner' } },
  });
  const kc = new KubeConfig();
  kc.loadFromFile(loadStackInfo().k8s.kubeconfig);
  const user = kc.getCurrentUser()!;
  kc.users = [{ ...user, impersonateUser: `system:serviceaccount:${ns.name}:limited` }];
  const asLimited = kc.makeApiClient(CoreV1Api);
  await asLimited.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'dependent' } } });
  const err = await asLimited
    .patchNamespacedConfigMap(
      {
        name: 'dependent',
        namespace: ns.name,
        body: {
          metadata: {
            ownerReferences: [
              { apiVersion: 'v1', kind: 'ConfigMap', name: 'the-owner', uid: owner.metadata?.uid ?? '' },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    .then(
      () => undefined,
      (e: unknown) => e as { code?: number; body?: string },
    );
  expect(err?.code).toBe(403);
  expect(err?.body).toContain("cannot set an ownerRef on a resource you can't delete");
});
