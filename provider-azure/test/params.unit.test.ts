// Bad input never reaches the network: each case names the parameter and gets the right code.
import { parseMountRequest, ProviderError } from '@secret-store-sync/proto';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCloud } from '../src/cloud.js';
import { ConfigError, parseConfig, type Config } from '../src/config.js';
import { parseMountParams, type MountPolicy } from '../src/params.js';

// Signed with node:crypto directly: only the claims matter here (Entra checks signatures).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
function jwt(exp: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: 'https://issuer', sub: 'system:serviceaccount:ns:sa', exp })}`;
  return `${body}.${sign('sha256', Buffer.from(body), privateKey).toString('base64url')}`;
}
const goodToken = jwt(Math.floor(Date.now() / 1000) + 600);
const expiredToken = jwt(Math.floor(Date.now() / 1000) - 60);

const OBJ = 'array:\n  - |\n    objectName: s1\n    objectType: secret\n';
const obj = (fields: string) =>
  `array:\n  - |\n${fields
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
const tokens = (t: string) => JSON.stringify({ 'api://AzureADTokenExchange': { token: t, expirationTimestamp: '' } });

/** The provider's defaults: no node identity, no service principals, no cloud files, 256 objects, 1 000 reads. */
const DEFAULTS: MountPolicy = {
  defaultCloud: 'AzurePublicCloud',
  cloudEnvDir: '',
  allowNodeIdentity: false,
  nodeIdentities: new Map(),
  allowServicePrincipal: false,
  maxObjectsPerMount: 256,
  maxReadsPerMount: 1000,
};

function attempt(
  params: Record<string, string>,
  opts: {
    secrets?: Record<string, string>;
    raw?: string;
    token?: string | null;
    policy?: Partial<MountPolicy>;
    namespace?: string;
  } = {},
) {
  const token = opts.token === undefined ? goodToken : opts.token;
  const attributes =
    opts.raw ??
    JSON.stringify({
      keyvaultName: 'kv1',
      tenantID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      clientID: 'client-1',
      objects: OBJ,
      'csi.storage.k8s.io/pod.namespace': opts.namespace ?? 'team-a',
      ...(token !== null ? { 'csi.storage.k8s.io/serviceAccount.tokens': tokens(token) } : {}),
      ...params,
    });
  return parseMountParams(
    parseMountRequest({
      attributes,
      secrets: opts.secrets ? JSON.stringify(opts.secrets) : 'null',
      permission: '420',
      targetPath: '/mnt/secrets-store',
      currentObjectVersion: [],
    }),
    { ...DEFAULTS, ...opts.policy },
  );
}

function expectError(f: () => unknown, code: string, message: string | RegExp) {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProviderError);
  expect((err as ProviderError).code).toBe(code);
  expect((err as ProviderError).message).toMatch(message);
}

const noClient = { clientID: '' };
type Case = [
  string,
  Record<string, string>,
  string,
  string | RegExp,
  {
    secrets?: Record<string, string>;
    raw?: string;
    token?: string | null;
    policy?: Partial<MountPolicy>;
    namespace?: string;
  }?,
];
/** What --node-identity-namespaces parses into (the provider's own flag parser). */
const grants = (flag: string) => (parseConfig([`--node-identity-namespaces=${flag}`]) as Config).nodeIdentities;
const nodeIdentityOn: Partial<MountPolicy> = { allowNodeIdentity: true, nodeIdentities: grants('infra') };
// Client IDs of identities attached to one node: AKS's kubelet identity and an add-on's.
const KUBELET = '6f1c2a3b-0000-4000-8000-00000000a001';
const ADDON = '6f1c2a3b-0000-4000-8000-00000000a002';
const bound: Partial<MountPolicy> = {
  allowNodeIdentity: true,
  nodeIdentities: grants(`infra=${KUBELET},apps=${ADDON}`),
};
const manyObjects = (n: number, extra = '') =>
  'array:\n' +
  Array.from({ length: n }, (_, i) => `  - |\n    objectName: s${i}\n    objectType: secret\n${extra}`).join('');
const cases: Case[] = [
  ['attributes that are not JSON', {}, 'InvalidArgument', 'attributes is not valid JSON', { raw: '{"keyvaultName": ' }],
  [
    'an attribute that is not a string',
    {},
    'InvalidArgument',
    "the value of 'x' must be a string",
    { raw: '{"x": 3}' },
  ],
  ['no keyvaultName', { keyvaultName: '' }, 'InvalidArgument', 'keyvaultName is not set'],
  [
    'a two-letter keyvaultName',
    { keyvaultName: 'kv' },
    'InvalidArgument',
    "keyvaultName 'kv' is not a valid vault name",
  ],
  ['an underscore in keyvaultName', { keyvaultName: 'kv_test' }, 'InvalidArgument', 'not a valid vault name'],
  [
    'a 31-character keyvaultName',
    { keyvaultName: 'longkeyvaultnamewhichisnotvalid' },
    'InvalidArgument',
    'not a valid vault name',
  ],
  ['no tenantID', { tenantID: '' }, 'InvalidArgument', 'tenantID is not set'],
  ['a tenantID with a slash', { tenantID: 'a/b' }, 'InvalidArgument', "tenantID 'a/b' is not a tenant id"],
  [
    'a domain as tenantID (Key Vault names the tenant by GUID; the SDK compares exactly)',
    { tenantID: 'contoso.onmicrosoft.com' },
    'InvalidArgument',
    "tenantID 'contoso.onmicrosoft.com' is a domain; set the tenant's GUID",
  ],
  ['no identity at all', noClient, 'InvalidArgument', 'no identity is configured'],
  [
    'clientID and a service-principal secret',
    {},
    'InvalidArgument',
    'only one identity may be configured',
    { secrets: { clientid: 'a', clientsecret: 'b' } },
  ],
  [
    'a secret without clientsecret',
    noClient,
    'InvalidArgument',
    'has clientid but no clientsecret',
    { secrets: { clientid: 'a' } },
  ],
  ['usePodIdentity', { ...noClient, usePodIdentity: 'true' }, 'InvalidArgument', 'aad-pod-identity is retired'],
  [
    'a boolean that is not one',
    { useVMManagedIdentity: 'tru' },
    'InvalidArgument',
    "useVMManagedIdentity must be true or false, got 'tru'",
  ],
  [
    'two identity flags',
    { ...noClient, useVMManagedIdentity: 'true', useAzureTokenProxy: 'true' },
    'InvalidArgument',
    'only one identity may be configured',
  ],
  [
    'clientID together with useVMManagedIdentity',
    { useVMManagedIdentity: 'true' },
    'InvalidArgument',
    'only one identity may be configured, found: useVMManagedIdentity, clientID (workload identity)',
    { policy: nodeIdentityOn, namespace: 'infra' },
  ],
  [
    'clientID together with useVMManagedIdentity and the same userAssignedIdentityID',
    { useVMManagedIdentity: 'true', userAssignedIdentityID: 'client-1' },
    'InvalidArgument',
    'only one identity may be configured',
    { policy: nodeIdentityOn, namespace: 'infra' },
  ],
  [
    "the node's managed identity, off by default",
    { ...noClient, useVMManagedIdentity: 'true' },
    'InvalidArgument',
    /managed identity is disabled in this provider.*--allow-node-identity=true/,
  ],
  [
    'a user-assigned node identity, off by default',
    { ...noClient, useVMManagedIdentity: 'true', userAssignedIdentityID: 'kubelet-id' },
    'InvalidArgument',
    'is disabled in this provider',
  ],
  [
    "the node's identity from a namespace the operator did not list",
    { ...noClient, useVMManagedIdentity: 'true' },
    'InvalidArgument',
    "namespace 'team-a' may not use the node's managed identity",
    { policy: nodeIdentityOn },
  ],
  [
    'a user-assigned node identity from a namespace listed bare (before: any identity attached to the node)',
    { ...noClient, useVMManagedIdentity: 'true', userAssignedIdentityID: KUBELET },
    'InvalidArgument',
    `namespace 'infra' may not use the identity '${KUBELET}' (userAssignedIdentityID): it may use the node's default identity (no userAssignedIdentityID). Each namespace uses only the node identities an operator binds to it (--node-identity-namespaces=infra=<client id>`,
    { policy: nodeIdentityOn, namespace: 'infra' },
  ],
  [
    "another namespace's node identity",
    { ...noClient, useVMManagedIdentity: 'true', userAssignedIdentityID: KUBELET },
    'InvalidArgument',
    `namespace 'apps' may not use the identity '${KUBELET}' (userAssignedIdentityID): it may use '${ADDON}'.`,
    { policy: bound, namespace: 'apps' },
  ],
  [
    "the node's default identity from a namespace bound to a user-assigned one only",
    { ...noClient, useVMManagedIdentity: 'true' },
    'InvalidArgument',
    `namespace 'apps' may not use the node's default identity (no userAssignedIdentityID): it may use '${ADDON}'.`,
    { policy: bound, namespace: 'apps' },
  ],
  [
    'a service principal, off by default',
    noClient,
    'InvalidArgument',
    /service-principal credentials are disabled.*--allow-service-principal=true/,
    { secrets: { clientid: 'a', clientsecret: 'b' }, token: null },
  ],
  [
    'more objects than a Mount may hold',
    { objects: manyObjects(257) },
    'InvalidArgument',
    "lists 257 objects, over this provider's limit of 256 per Mount",
  ],
  [
    '10 000 objects',
    { objects: manyObjects(10_000) },
    'InvalidArgument',
    /objects is \d+ characters long|over this provider's limit/,
  ],
  [
    'more reads than a Mount may make',
    { objects: manyObjects(20, '    objectVersionHistory: 100\n') },
    'InvalidArgument',
    "need 2040 Key Vault reads, over this provider's limit of 1000 per Mount",
  ],
  [
    'AzureStackCloud when no folder is set',
    { cloudName: 'AzureStackCloud', cloudEnvFileName: 'stack.json' },
    'InvalidArgument',
    'AzureStackCloud is not enabled in this provider',
  ],
  [
    'a cloud file outside the folder',
    { cloudName: 'AzureStackCloud', cloudEnvFileName: '/etc/passwd' },
    'InvalidArgument',
    "cloudEnvFileName '/etc/passwd' is not a file in /etc/sss-clouds",
    { policy: { cloudEnvDir: '/etc/sss-clouds' } },
  ],
  [
    'a cloud file climbing out',
    { cloudName: 'AzureStackCloud', cloudEnvFileName: '../../proc/self/environ' },
    'InvalidArgument',
    'is not a file in /etc/sss-clouds',
    { policy: { cloudEnvDir: '/etc/sss-clouds' } },
  ],
  [
    'a parameter name in the wrong case',
    { userAssignedIdentityId: 'x' },
    'InvalidArgument',
    "did you mean 'userAssignedIdentityID'",
  ],
  ['an unknown cloudName', { cloudName: 'AzureCloud1' }, 'InvalidArgument', "cloudName 'AzureCloud1' is not one of"],
  [
    'AzureStackCloud without its file',
    { cloudName: 'AzureStackCloud' },
    'InvalidArgument',
    'needs cloudEnvFileName',
    { policy: { cloudEnvDir: '/etc/sss-clouds' } },
  ],
  ['no objects', { objects: '' }, 'InvalidArgument', 'objects is not set'],
  ['objects that are not YAML', { objects: 'array: "s1' }, 'InvalidArgument', 'objects is not valid YAML'],
  [
    'objects as a flow list, which no class needs',
    { objects: 'array: [\n' },
    'InvalidArgument',
    'objects uses YAML flow lists ([...]), which a SecretProviderClass never needs',
  ],
  [
    'objects as a top-level list',
    { objects: '- objectName: a\n' },
    'InvalidArgument',
    'must be a YAML mapping with an `array:`',
  ],
  ['array: that is not a list', { objects: 'array: foo\n' }, 'InvalidArgument', '`array:` must be a list'],
  ['an empty array:', { objects: 'array:\n' }, 'InvalidArgument', '`array:` must be a list'],
  ['an array: with no entries', { objects: 'array:\n  -\n' }, 'InvalidArgument', 'objects[0] must be a mapping'],
  [
    'an object entry that is not YAML',
    { objects: 'array:\n  - "objectName: \\"a"\n' },
    'InvalidArgument',
    'objects[0] is not valid YAML',
  ],
  [
    'an unknown objectType',
    { objects: obj('objectName: s1\nobjectType: secrets') },
    'InvalidArgument',
    "objectType 'secrets' is not one of secret, key, cert",
  ],
  ['a missing objectType', { objects: obj('objectName: s1') }, 'InvalidArgument', 'it is required'],
  [
    'an invalid objectName',
    { objects: obj('objectName: my_secret\nobjectType: secret') },
    'InvalidArgument',
    'is not a Key Vault object name',
  ],
  [
    'an unknown objectEncoding',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectEncoding: utf-16') },
    'InvalidArgument',
    "objectEncoding 'utf-16' is not one of",
  ],
  [
    'objectEncoding on a cert',
    { objects: obj('objectName: s1\nobjectType: cert\nobjectEncoding: base64') },
    'InvalidArgument',
    'objectEncoding applies to objectType secret only',
  ],
  [
    'an unknown objectFormat',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectFormat: pkcs') },
    'InvalidArgument',
    "objectFormat 'pkcs' is not one of pem, pfx",
  ],
  [
    'objectFormat pfx on a cert',
    { objects: obj('objectName: s1\nobjectType: cert\nobjectFormat: pfx') },
    'InvalidArgument',
    'objectFormat pfx applies to objectType secret',
  ],
  [
    'a negative objectVersionHistory',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectVersionHistory: -1') },
    'InvalidArgument',
    'objectVersionHistory must be a whole number',
  ],
  [
    'a huge objectVersionHistory',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectVersionHistory: 100000') },
    'InvalidArgument',
    'objectVersionHistory must be from 1 to 100',
  ],
  [
    'an objectVersion with a slash',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectVersion: a/b') },
    'InvalidArgument',
    'is not a Key Vault version id',
  ],
  [
    'an alias climbing out',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectAlias: ../etc/passwd') },
    'InvalidArgument',
    "must not contain '..'",
  ],
  [
    'an absolute alias',
    { objects: obj('objectName: s1\nobjectType: secret\nobjectAlias: /etc/passwd') },
    'InvalidArgument',
    'must be a relative path',
  ],
  [
    'a filePermission that is not octal',
    { objects: obj('objectName: s1\nobjectType: secret\nfilePermission: 0900') },
    'InvalidArgument',
    "filePermission '0900' must be an octal file mode",
  ],
  [
    'a misspelt object field',
    { objects: obj('objectname: s1\nobjectType: secret') },
    'InvalidArgument',
    "unknown field 'objectname' (did you mean 'objectName'?)",
  ],
  [
    'two objects writing one file',
    {
      objects:
        'array:\n  - |\n    objectName: s1\n    objectType: secret\n  - |\n    objectName: s1\n    objectType: key\n',
    },
    'InvalidArgument',
    'give one of them an objectAlias',
  ],
  [
    'service-account tokens that are not JSON',
    { 'csi.storage.k8s.io/serviceAccount.tokens': '{' },
    'InvalidArgument',
    'serviceAccount.tokens is not valid JSON',
  ],
  [
    'no token for the audience',
    { 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ other: { token: 'x' } }) },
    'Unauthenticated',
    'no service-account token for audience api://AzureADTokenExchange',
  ],
  ['a token that is not a JWT', {}, 'Unauthenticated', 'is not a JWT', { token: 'not-a-jwt' }],
];

// A rest parameter: with a fixed arity Jest would take a missing `opts` for a done callback.
test.each(cases)('%s', (...row) => {
  const [, params, code, message, opts] = row;
  expectError(() => attempt(params, opts), code, message);
});

test('service-account tokens that are not JSON: the message quotes none of them', () => {
  // JSON.parse's own message quotes the input around the fault: here, a token's first characters.
  const tokens = '{"api://AzureADTokenExchange":{"token":eyJhbGciOiJSUzI1NiJ9.secret-part}}';
  expectError(
    () => attempt({ 'csi.storage.k8s.io/serviceAccount.tokens': tokens }),
    'InvalidArgument',
    /^csi\.storage\.k8s\.io\/serviceAccount\.tokens is not valid JSON$/,
  );
});

test('an expired token is refused before any call, naming when it expired', () => {
  expectError(() => attempt({}, { token: expiredToken }), 'Unauthenticated', /expired at \d{4}-/);
});

test('valid parameters parse into a typed description', () => {
  const p = attempt({
    tenantId: '72F988BF-86F1-41AF-91AB-2D7CD011DB47',
    tenantID: '',
    objects: obj(
      'objectName: s1\nobjectType: secret\nobjectVersionHistory: 2\nobjectAlias: dir/s\nfilePermission: 0600\nobjectEncoding: BasE64',
    ),
  });
  expect(p).toMatchObject({
    vaultName: 'kv1',
    tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
    cloud: { name: 'AzurePublicCloud' },
    identity: { mode: 'workloadIdentity', clientId: 'client-1', tokenSubject: 'system:serviceaccount:ns:sa' },
  });
  expect(p.objects).toEqual([
    {
      name: 's1',
      type: 'secret',
      version: '',
      versionHistory: 2,
      fileName: 'dir/s',
      encoding: 'base64',
      format: 'pem',
      mode: 0o600,
      modeText: '0600',
    },
  ]);
});

test('a service principal from the node-publish secret, when the operator allows them; keys matched case-insensitively', () => {
  expect(
    attempt(noClient, {
      secrets: { ClientID: 'sp', ClientSecret: 'pw' },
      token: null,
      policy: { allowServicePrincipal: true },
    }).identity,
  ).toEqual({ mode: 'servicePrincipal', clientId: 'sp', clientSecret: 'pw' });
});

test("the node's managed identity, only for the namespaces the operator listed", () => {
  expect(
    attempt({ ...noClient, useVMManagedIdentity: 'true' }, { policy: nodeIdentityOn, namespace: 'infra' }).identity,
  ).toEqual({ mode: 'managedIdentity' });
});

test('node identities bound to namespaces: the default one, user-assigned ones by client ID (any case), or every one with *', () => {
  const policy = {
    allowNodeIdentity: true,
    nodeIdentities: grants(`infra=default, infra=${KUBELET},apps=${ADDON.toUpperCase()},ops=*`),
  };
  const use = (namespace: string, id?: string) =>
    attempt(
      { ...noClient, useVMManagedIdentity: 'true', ...(id ? { userAssignedIdentityID: id } : {}) },
      { policy, namespace },
    ).identity;
  expect(use('infra')).toEqual({ mode: 'managedIdentity' });
  expect(use('infra', KUBELET.toUpperCase())).toEqual({ mode: 'managedIdentity', clientId: KUBELET.toUpperCase() });
  expect(use('apps', ADDON)).toEqual({ mode: 'managedIdentity', clientId: ADDON });
  expect(() => use('infra', ADDON)).toThrow(
    `it may use the node's default identity (no userAssignedIdentityID), '${KUBELET}'.`,
  );
  expect([use('ops'), use('ops', KUBELET), use('ops', ADDON)]).toEqual([
    { mode: 'managedIdentity' },
    { mode: 'managedIdentity', clientId: KUBELET },
    { mode: 'managedIdentity', clientId: ADDON },
  ]);
});

test.each([
  [
    'a client ID that is not one',
    'infra=kubelet-id',
    "in 'infra=kubelet-id', 'kubelet-id' is not a client ID (a GUID), 'default'",
  ],
  ['a namespace name that is not one', 'Infra', "'Infra' is not a namespace name"],
  ['an identity without its namespace', `=${KUBELET}`, "'' is not a namespace name"],
])('--node-identity-namespaces with %s is refused at start', (_what, flag, message) => {
  expect(() => grants(flag)).toThrow(ConfigError);
  expect(() => grants(flag)).toThrow(message);
});

test('256 objects and 1 000 reads are allowed', () => {
  expect(attempt({ objects: manyObjects(256) }).objects).toHaveLength(256);
  expect(attempt({ objects: manyObjects(9, '    objectVersionHistory: 100\n') }).objects).toHaveLength(9);
});

test('sovereign clouds resolve their Key Vault suffix', async () => {
  expect((await resolveCloud(attempt({ cloudName: 'azurechinacloud' }).cloud, '')).keyVaultDnsSuffix).toBe(
    'vault.azure.cn',
  );
  expect((await resolveCloud(attempt({ cloudName: 'AzureUSGovernmentCloud' }).cloud, '')).keyVaultDnsSuffix).toBe(
    'vault.usgovcloudapi.net',
  );
});

describe("AzureStackCloud files: only regular, small files in the operator's folder, read without blocking, never echoed", () => {
  const dir = mkdtempSync(join(tmpdir(), 'clouds-'));
  const outside = mkdtempSync(join(tmpdir(), 'outside-'));
  writeFileSync(
    join(dir, 'stack.json'),
    JSON.stringify({ keyVaultDNSSuffix: '.vault.stack.local', activeDirectoryEndpoint: 'https://login.stack.local/' }),
  );
  writeFileSync(join(dir, 'passwd-like'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(dir, 'huge.json'), ' '.repeat(65 * 1024));
  writeFileSync(
    join(outside, 'secret.json'),
    JSON.stringify({ keyVaultDNSSuffix: 'x', activeDirectoryEndpoint: 'https://x' }),
  );
  symlinkSync(join(outside, 'secret.json'), join(dir, 'link.json'));
  symlinkSync('/dev/zero', join(dir, 'zero'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  const resolveIn = (file: string) =>
    resolveCloud(
      attempt({ cloudName: 'AzureStackCloud', cloudEnvFileName: file }, { policy: { cloudEnvDir: dir } }).cloud,
      dir,
    );
  const refusal = (file: string) =>
    resolveIn(file).then(
      () => 'accepted',
      (e: ProviderError) => `${e.code}: ${e.message}`,
    );

  test('a file in the folder, by name or by its full path', async () => {
    expect(await resolveIn('stack.json')).toMatchObject({
      keyVaultDnsSuffix: 'vault.stack.local',
      authorityHost: expect.any(String),
    });
    expect(await resolveIn(join(dir, 'stack.json'))).toMatchObject({ keyVaultDnsSuffix: 'vault.stack.local' });
  });
  test.each([
    ['/dev/zero through a link', 'zero', 'leads outside'],
    ['a link out of the folder', 'link.json', 'leads outside'],
    ['a FIFO (would block the event loop)', 'fifo', 'is not a regular file'],
    ['a file over 64 KiB', 'huge.json', 'is larger than 65536 bytes'],
    ['a missing file', 'nope.json', 'could not be read (ENOENT)'],
  ])('refuses %s', async (_what, file, message) => {
    expect(await refusal(file)).toContain(message);
  });
  test('a file that is not JSON is refused without quoting it', async () => {
    const r = await refusal('passwd-like');
    expect(r).toBe("InvalidArgument: cloudEnvFileName 'passwd-like' is not valid JSON");
    expect(r).not.toContain('root');
  });
});
