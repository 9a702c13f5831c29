// The guide's status types, each reproduced from its cause, with the manager and a test provider
// running as their own processes against the real apiserver.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { apiStatus, eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let hanging: TestProvider;
let manager: RunningManager;
const SECRET_VALUE = 'sup3r-s3cret-value';
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };

async function spc(name: string, providerName = 'test', parameters: Record<string, string> | null = { prefix: '' }) {
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name, provider: providerName, parameters: parameters ?? undefined }),
  });
}

async function secretSync(
  name: string,
  opts: {
    spc?: string;
    data?: { sourcePath: string; targetKey: string }[];
    type?: string;
    sa?: string;
    annotations?: Record<string, string>;
  } = {},
) {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name, ...opts, type: opts.type ?? 'Opaque' }),
  });
}

async function get(name: string): Promise<SecretSync> {
  return (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name })) as SecretSync;
}

/** Waits until the Ready condition has the reason; returns the SecretSync. */
async function reason(name: string, expected: string, timeoutMs = 30_000): Promise<SecretSync> {
  return eventually(
    async () => {
      const ss = await get(name);
      return ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason === expected ? ss : undefined;
    },
    timeoutMs,
    `${name} to report ${expected}`,
  );
}

const ready = (ss: SecretSync) => ss.status!.conditions!.find((c) => c.type === 'Ready')!;
const secret = (name: string) => k.core.readNamespacedSecret({ name, namespace: ns.name });
const secretValue = async (name: string, key = 'key') =>
  Buffer.from((await secret(name)).data?.[key] ?? '', 'base64').toString();
async function force(name: string, value: string) {
  await k.custom.patchNamespacedCustomObject(
    { ...co, namespace: ns.name, name, body: { spec: { forceSynchronization: value } } },
    MERGE,
  );
}
async function eventReasons(name: string): Promise<string[]> {
  const list = await k.core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => e.reason ?? '');
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'status');
  provider = await startTestProvider('test');
  hanging = await startTestProvider('hang', provider.socketDir);
  provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' } });
  hanging.setState({ files: { foo: 'x' }, hangMs: 60_000 });
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
  await spc('good');
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    args: [
      '--rotation-poll-interval-seconds=3600',
      '--provider-timeout-seconds=2',
      '--workers=4',
      // Tokens for the test provider, so a missing ServiceAccount shows (TokenRequest finds none).
      '--provider-token-audiences=test=api://AzureADTokenExchange',
    ],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  await hanging?.stop();
  await ns?.dispose();
});

test('CreateSucceeded: the Secret is written with its owner, label and annotation; an event says so', async () => {
  await secretSync('created');
  const ss = await reason('created', 'CreateSucceeded');
  expect(await secretValue('created')).toBe(SECRET_VALUE);
  const s = await secret('created');
  expect(s.metadata?.ownerReferences).toEqual([
    expect.objectContaining({ kind: 'SecretSync', name: 'created', uid: ss.metadata.uid }),
  ]);
  expect(s.metadata?.labels).toHaveProperty(['secrets-store.sync.x-k8s.io'], '');
  expect(ss.status?.syncHash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
  expect(ss.status?.syncedObjectVersions).toContainEqual({ id: 'file/foo', version: String(SECRET_VALUE.length) });
  await eventually(
    async () => ((await eventReasons('created')).includes('CreateSucceeded') ? true : undefined),
    10_000,
    'the event',
  );
});

test('UpdateNoValueChangeSucceeded writes nothing; UpdateValueChangeOrForceUpdateSucceeded writes the new value', async () => {
  await secretSync('rotating', { data: [{ sourcePath: 'other', targetKey: 'key' }] });
  await reason('rotating', 'CreateSucceeded');
  const rv = (await secret('rotating')).metadata?.resourceVersion;
  // An edit that does not change what the Secret holds: checked, nothing written.
  await k.custom.patchNamespacedCustomObject(
    {
      ...co,
      namespace: ns.name,
      name: 'rotating',
      body: { spec: { secretProviderClassName: 'good', serviceAccountName: 'default' } },
    },
    MERGE,
  );
  await force('rotating', 'one');
  await reason('rotating', 'UpdateValueChangeOrForceUpdateSucceeded');
  expect((await secret('rotating')).metadata?.resourceVersion).toBe(rv); // same bytes: the apiserver keeps the version
  provider.setState({ files: { foo: SECRET_VALUE, other: 'rotated-value' } });
  await force('rotating', 'two');
  await eventually(
    async () => ((await secretValue('rotating')) === 'rotated-value' ? true : undefined),
    20_000,
    'the new value',
  );
  expect((await secret('rotating')).metadata?.resourceVersion).not.toBe(rv);
  provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' } });
});

test('UserInputValidationFailed: a sourcePath the provider does not return', async () => {
  await secretSync('bad-path', { data: [{ sourcePath: 'nope', targetKey: 'key' }] });
  const ss = await reason('bad-path', 'UserInputValidationFailed');
  expect(ready(ss).message).toContain("sourcePath 'nope' is not among the files the provider returned (foo, other)");
  await expect(secret('bad-path')).rejects.toMatchObject({ code: 404 });
});

test('UserInputValidationFailed: a ServiceAccount that does not exist', async () => {
  await secretSync('no-sa', { sa: 'ghost' });
  expect(ready(await reason('no-sa', 'UserInputValidationFailed')).message).toContain(
    "ServiceAccount 'ghost' was not found",
  );
});

test('file paths and Secret keys the upstream CRD refused (certs/tls → x_y.pem, a.b → a.b) sync', async () => {
  provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value', 'certs/tls': 'pem-bytes', 'a.b': 'dotted' } });
  try {
    await secretSync('paths', {
      data: [
        { sourcePath: 'certs/tls', targetKey: 'x_y.pem' },
        { sourcePath: 'a.b', targetKey: 'a.b' },
      ],
    });
    await reason('paths', 'CreateSucceeded');
    expect([await secretValue('paths', 'x_y.pem'), await secretValue('paths', 'a.b')]).toEqual(['pem-bytes', 'dotted']);
  } finally {
    provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' } });
  }
});

test('UserInputValidationFailed: a Secret type the manager may not write', async () => {
  await secretSync('sa-token', { type: 'kubernetes.io/service-account-token' });
  expect(ready(await reason('sa-token', 'UserInputValidationFailed')).message).toContain(
    "type 'kubernetes.io/service-account-token' is not allowed",
  );
  // Node-join credentials are opt-in (--allowed-secret-types): by default no SecretSync writes one.
  await secretSync('bootstrap-token', { type: 'bootstrap.kubernetes.io/token' });
  expect(ready(await reason('bootstrap-token', 'UserInputValidationFailed')).message).toContain(
    "type 'bootstrap.kubernetes.io/token' is not allowed",
  );
  await expect(secret('bootstrap-token')).rejects.toMatchObject({ code: 404 });
});

test('ControllerSpcError, then a later success clears it when the class appears', async () => {
  await secretSync('late-class', { spc: 'later' });
  expect(ready(await reason('late-class', 'ControllerSpcError')).message).toContain(
    "SecretProviderClass 'later' was not found",
  );
  await spc('later');
  const ss = await reason('late-class', 'CreateSucceeded');
  expect(ss.status?.conditions?.find((c) => c.type === 'SecretCreated')).toMatchObject({
    status: 'True',
    reason: 'CreateSucceeded',
  });
});

test('ControllerSpcError: a class without parameters', async () => {
  await spc('empty', 'test', null);
  await secretSync('empty-class', { spc: 'empty' });
  expect(ready(await reason('empty-class', 'ControllerSpcError')).message).toContain('has no spec.parameters');
});

test('CreateFailedProviderError: no provider socket', async () => {
  await spc('absent', 'absent');
  await secretSync('no-provider', { spc: 'absent' });
  expect(ready(await reason('no-provider', 'CreateFailedProviderError')).message).toMatch(
    /provider 'absent' is not running: no socket at .*absent\.sock/,
  );
});

test('a hanging provider hits the deadline and does not hold up other SecretSyncs', async () => {
  await spc('hangs', 'hang');
  await secretSync('stuck', { spc: 'hangs' });
  await secretSync('unaffected');
  await reason('unaffected', 'CreateSucceeded', 10_000);
  expect(ready(await reason('stuck', 'CreateFailedProviderError')).message).toContain(
    "provider 'hang': DEADLINE_EXCEEDED: did not answer within 2 s",
  );
});

test('UpdateFailedProviderError carries the provider code and reason; recovery sets Ready again', async () => {
  await secretSync('flaky');
  await reason('flaky', 'CreateSucceeded');
  provider.setState({
    files: { foo: SECRET_VALUE },
    fail: { code: 'PermissionDenied', message: "vault 'kv': the identity may not read it" },
  });
  try {
    await force('flaky', 'retry-1');
    expect(ready(await reason('flaky', 'UpdateFailedProviderError')).message).toContain(
      "provider 'test': PERMISSION_DENIED: vault 'kv': the identity may not read it (ExampleFailure)",
    );
  } finally {
    provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' } });
  }
  await reason('flaky', 'UpdateValueChangeOrForceUpdateSucceeded');
});

test('CreateFailedInvalidLabel: a user Secret of the same name is left byte for byte', async () => {
  const mine = await k.core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name: 'taken', labels: { app: 'mine' } }, stringData: { key: 'user value' } },
  });
  await secretSync('taken');
  expect(ready(await reason('taken', 'CreateFailedInvalidLabel')).message).toContain('left untouched');
  const after = await secret('taken');
  expect(after.metadata?.resourceVersion).toBe(mine.metadata?.resourceVersion);
  expect(after.data).toEqual(mine.data);
});

test("CreateFailedInvalidAnnotation: a Secret with the label but not this SecretSync's annotation", async () => {
  await k.core.createNamespacedSecret({
    namespace: ns.name,
    body: {
      metadata: { name: 'half-taken', labels: { 'secrets-store.sync.x-k8s.io': '' } },
      stringData: { key: 'user value' },
    },
  });
  await secretSync('half-taken');
  await reason('half-taken', 'CreateFailedInvalidAnnotation');
  expect(await secretValue('half-taken')).toBe('user value');
});

test('UpdateFailedInvalidLabel / UpdateFailedInvalidAnnotation: marks changed on a managed Secret stop the manager', async () => {
  await secretSync('tampered');
  await reason('tampered', 'CreateSucceeded');
  const JSONP = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  await k.core.patchNamespacedSecret(
    {
      name: 'tampered',
      namespace: ns.name,
      body: [
        { op: 'remove', path: '/metadata/labels/secrets-store.sync.x-k8s.io' },
        { op: 'replace', path: '/data/key', value: Buffer.from('edited').toString('base64') },
      ],
    },
    JSONP,
  );
  await force('tampered', 'a');
  await reason('tampered', 'UpdateFailedInvalidLabel');
  expect(await secretValue('tampered')).toBe('edited');
  await k.core.patchNamespacedSecret(
    {
      name: 'tampered',
      namespace: ns.name,
      body: {
        metadata: {
          labels: { 'secrets-store.sync.x-k8s.io': '' },
          annotations: { 'secrets-store.sync.x-k8s.io/owner-uid': 'someone-else' },
        },
      },
    },
    MERGE,
  );
  await force('tampered', 'b');
  await reason('tampered', 'UpdateFailedInvalidAnnotation');
  expect(await secretValue('tampered')).toBe('edited');
});

test('SecretPatchFailedUnknownError: the apiserver rejects the Secret, with its message', async () => {
  await secretSync('bad-annotation', { annotations: { 'my.annotation/with_invalid_characters!': 'x' } });
  expect(ready(await reason('bad-annotation', 'SecretPatchFailedUnknownError')).message).toContain(
    'metadata.annotations: Invalid value',
  );
});

test('deleting the SecretSync garbage-collects its Secret', async () => {
  await secretSync('short-lived');
  await reason('short-lived', 'CreateSucceeded');
  await k.custom.deleteNamespacedCustomObject({ ...co, namespace: ns.name, name: 'short-lived' });
  await eventually(
    async () => ((await secret('short-lived').then(() => 200, apiStatus)) === 404 ? true : undefined),
    60_000,
    'the Secret to be collected',
  );
});

test('a SecretSync for another controller name is left alone', async () => {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name: 'not-mine', controllerName: 'someone-else' }),
  });
  await secretSync('after-not-mine');
  await reason('after-not-mine', 'CreateSucceeded');
  expect((await get('not-mine')).status).toBeUndefined();
  await expect(secret('not-mine')).rejects.toMatchObject({ code: 404 });
});

test('an edited SecretProviderClass re-syncs the SecretSyncs that use it', async () => {
  await spc('editable');
  await secretSync('uses-editable', { spc: 'editable' });
  const before = await reason('uses-editable', 'CreateSucceeded');
  expect(before.status?.syncedObjectVersions?.map((v) => v.id)).toContain('file/other');
  // The example provider returns only files under `prefix`: the class edit changes the object set.
  await k.custom.patchNamespacedCustomObject(
    {
      group: 'secrets-store.csi.x-k8s.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'secretproviderclasses',
      name: 'editable',
      body: { spec: { parameters: { prefix: 'fo' } } },
    },
    MERGE,
  );
  await eventually(
    async () =>
      (await get('uses-editable')).status?.syncedObjectVersions?.some((v) => v.id === 'file/other') ? undefined : true,
    20_000,
    'the re-sync',
  );
  expect(ready(await get('uses-editable')).reason).toBe('UpdateNoValueChangeSucceeded');
});

test('a provider killed mid-Mount and restarted: the SecretSync converges', async () => {
  provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' }, hangMs: 1_500 });
  const mounts = provider.requests().length;
  await secretSync('survivor');
  await eventually(
    async () => (provider.requests().length > mounts ? true : undefined),
    10_000,
    'the Mount to reach the provider',
  );
  await provider.stop('SIGKILL');
  expect(ready(await reason('survivor', 'CreateFailedProviderError')).message).toMatch(/provider '(test)'/);
  provider.setState({ files: { foo: SECRET_VALUE, other: 'other-value' } });
  provider = await startTestProvider('test', provider.socketDir);
  await reason('survivor', 'CreateSucceeded', 30_000);
  expect(await secretValue('survivor')).toBe(SECRET_VALUE);
});

test('every outcome above was recorded as an Event with its status type (Warning for failures)', async () => {
  const events = (await k.core.listNamespacedEvent({ namespace: ns.name })).items;
  const byReason = new Map(events.map((e) => [e.reason ?? '', e]));
  const failures = [
    'UserInputValidationFailed',
    'ControllerSpcError',
    'CreateFailedProviderError',
    'UpdateFailedProviderError',
    'CreateFailedInvalidLabel',
    'CreateFailedInvalidAnnotation',
    'UpdateFailedInvalidLabel',
    'UpdateFailedInvalidAnnotation',
    'SecretPatchFailedUnknownError',
  ];
  const successes = ['CreateSucceeded', 'UpdateNoValueChangeSucceeded', 'UpdateValueChangeOrForceUpdateSucceeded'];
  for (const r of failures) expect([r, byReason.get(r)?.type]).toEqual([r, 'Warning']);
  for (const r of successes) expect([r, byReason.get(r)?.type]).toEqual([r, 'Normal']);
  // The event says what happened and what to do, like the status.
  expect(byReason.get('CreateFailedInvalidLabel')?.message).toContain('delete it (kubectl delete secret)');
});

test('no secret value or token in logs, events or status', async () => {
  const logs = manager.logs();
  expect(logs).not.toContain(SECRET_VALUE);
  expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  const events = await k.core.listNamespacedEvent({ namespace: ns.name });
  const all =
    JSON.stringify(events.items) +
    JSON.stringify((await k.custom.listNamespacedCustomObject({ ...co, namespace: ns.name })) as object);
  expect(all).not.toContain(SECRET_VALUE);
  expect(all).not.toContain(Buffer.from(SECRET_VALUE).toString('base64'));
  expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
});

test('secretsync_status counts the SecretSyncs by the Ready reason kubectl shows, failing ones included', async () => {
  const fromApi = async () => {
    const list = (await k.custom.listNamespacedCustomObject({ ...co, namespace: ns.name })) as { items: SecretSync[] };
    const counts: Record<string, number> = {};
    // This manager runs with the default controller name: a SecretSync for another is not its own.
    for (const ss of list.items.filter((o) => !o.spec?.secretSyncControllerName)) {
      const r = ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason ?? 'None';
      counts[r] = (counts[r] ?? 0) + 1;
    }
    return counts;
  };
  const fromMetrics = async () =>
    Object.fromEntries(
      [...(await manager.metrics()).matchAll(/^secretsync_status\{reason="([^"]+)"\} (\d+)$/gm)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    );
  // The manager's cache follows the apiserver's watch: equal once both have settled.
  const settled = await eventually(
    async () => {
      const [a, m] = [await fromApi(), await fromMetrics()];
      return JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(m).sort()) ? m : undefined;
    },
    20_000,
    'secretsync_status to match the SecretSyncs',
  );
  // The file's tests leave both healthy and failing SecretSyncs behind.
  expect(settled.CreateSucceeded).toBeGreaterThan(0);
  expect(Object.keys(settled).some((r) => /Failed|Error/.test(r))).toBe(true);
});
