// Bad input never reaches the network: each case names the parameter and gets the right code.
import { parseMountRequest, ProviderError } from '@secret-store-sync/proto';
import { generateKeyPairSync, sign } from 'node:crypto';
import { parseMountParams } from '../src/params.js';

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
const obj = (fields: string) => `array:\n  - |\n${fields.split('\n').map((l) => `    ${l}`).join('\n')}\n`;
const tokens = (t: string) => JSON.stringify({ 'api://AzureADTokenExchange': { token: t, expirationTimestamp: '' } });

function attempt(params: Record<string, string>, opts: { secrets?: Record<string, string>; raw?: string; token?: string | null } = {}) {
  const token = opts.token === undefined ? goodToken : opts.token;
  const attributes = opts.raw ?? JSON.stringify({
    keyvaultName: 'kv1', tenantID: 'tenant-1', clientID: 'client-1', objects: OBJ,
    ...(token !== null ? { 'csi.storage.k8s.io/serviceAccount.tokens': tokens(token) } : {}),
    ...params,
  });
  return parseMountParams(parseMountRequest({ attributes, secrets: opts.secrets ? JSON.stringify(opts.secrets) : 'null', permission: '420', targetPath: '', currentObjectVersion: [] }), 'AzurePublicCloud');
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
type Case = [string, Record<string, string>, string, string | RegExp, { secrets?: Record<string, string>; raw?: string; token?: string | null }?];
const cases: Case[] = [
  ['attributes that are not JSON', {}, 'InvalidArgument', 'attributes is not valid JSON', { raw: '{"keyvaultName": ' }],
  ['an attribute that is not a string', {}, 'InvalidArgument', "the value of 'x' must be a string", { raw: '{"x": 3}' }],
  ['no keyvaultName', { keyvaultName: '' }, 'InvalidArgument', 'keyvaultName is not set'],
  ['a two-letter keyvaultName', { keyvaultName: 'kv' }, 'InvalidArgument', "keyvaultName 'kv' is not a valid vault name"],
  ['an underscore in keyvaultName', { keyvaultName: 'kv_test' }, 'InvalidArgument', 'not a valid vault name'],
  ['a 31-character keyvaultName', { keyvaultName: 'longkeyvaultnamewhichisnotvalid' }, 'InvalidArgument', 'not a valid vault name'],
  ['no tenantID', { tenantID: '' }, 'InvalidArgument', 'tenantID is not set'],
  ['a tenantID with a slash', { tenantID: 'a/b' }, 'InvalidArgument', "tenantID 'a/b' is not a tenant id"],
  ['no identity at all', noClient, 'InvalidArgument', 'no identity is configured'],
  ['clientID and a service-principal secret', {}, 'InvalidArgument', 'only one identity may be configured', { secrets: { clientid: 'a', clientsecret: 'b' } }],
  ['a secret without clientsecret', noClient, 'InvalidArgument', 'has clientid but no clientsecret', { secrets: { clientid: 'a' } }],
  ['usePodIdentity', { ...noClient, usePodIdentity: 'true' }, 'InvalidArgument', 'aad-pod-identity is retired'],
  ['a boolean that is not one', { useVMManagedIdentity: 'tru' }, 'InvalidArgument', "useVMManagedIdentity must be true or false, got 'tru'"],
  ['two identity flags', { ...noClient, useVMManagedIdentity: 'true', useAzureTokenProxy: 'true' }, 'InvalidArgument', 'only one identity may be configured'],
  ['a parameter name in the wrong case', { userAssignedIdentityId: 'x' }, 'InvalidArgument', "did you mean 'userAssignedIdentityID'"],
  ['an unknown cloudName', { cloudName: 'AzureCloud1' }, 'InvalidArgument', "cloudName 'AzureCloud1' is not one of"],
  ['AzureStackCloud without its file', { cloudName: 'AzureStackCloud' }, 'InvalidArgument', 'needs cloudEnvFileName'],
  ['AzureStackCloud with a missing file', { cloudName: 'AzureStackCloud', cloudEnvFileName: '/nonexistent/cloud.json' }, 'InvalidArgument', 'could not be read'],
  ['no objects', { objects: '' }, 'InvalidArgument', 'objects is not set'],
  ['objects that are not YAML', { objects: 'array: [\n' }, 'InvalidArgument', 'objects is not valid YAML'],
  ['objects as a top-level list', { objects: '- objectName: a\n' }, 'InvalidArgument', 'must be a YAML mapping with an `array:`'],
  ['array: that is not a list', { objects: 'array: foo\n' }, 'InvalidArgument', '`array:` must be a list'],
  ['an empty array:', { objects: 'array: []\n' }, 'InvalidArgument', 'lists no objects'],
  ['an object entry that is not YAML', { objects: 'array:\n  - "objectName: [a"\n' }, 'InvalidArgument', 'objects[0] is not valid YAML'],
  ['an unknown objectType', { objects: obj('objectName: s1\nobjectType: secrets') }, 'InvalidArgument', "objectType 'secrets' is not one of secret, key, cert"],
  ['a missing objectType', { objects: obj('objectName: s1') }, 'InvalidArgument', 'it is required'],
  ['an invalid objectName', { objects: obj('objectName: my_secret\nobjectType: secret') }, 'InvalidArgument', 'is not a Key Vault object name'],
  ['an unknown objectEncoding', { objects: obj('objectName: s1\nobjectType: secret\nobjectEncoding: utf-16') }, 'InvalidArgument', "objectEncoding 'utf-16' is not one of"],
  ['objectEncoding on a cert', { objects: obj('objectName: s1\nobjectType: cert\nobjectEncoding: base64') }, 'InvalidArgument', 'objectEncoding applies to objectType secret only'],
  ['an unknown objectFormat', { objects: obj('objectName: s1\nobjectType: secret\nobjectFormat: pkcs') }, 'InvalidArgument', "objectFormat 'pkcs' is not one of pem, pfx"],
  ['objectFormat pfx on a cert', { objects: obj('objectName: s1\nobjectType: cert\nobjectFormat: pfx') }, 'InvalidArgument', 'objectFormat pfx applies to objectType secret'],
  ['a negative objectVersionHistory', { objects: obj('objectName: s1\nobjectType: secret\nobjectVersionHistory: -1') }, 'InvalidArgument', 'objectVersionHistory must be a whole number'],
  ['a huge objectVersionHistory', { objects: obj('objectName: s1\nobjectType: secret\nobjectVersionHistory: 100000') }, 'InvalidArgument', 'objectVersionHistory must be from 1 to 100'],
  ['an objectVersion with a slash', { objects: obj('objectName: s1\nobjectType: secret\nobjectVersion: a/b') }, 'InvalidArgument', 'is not a Key Vault version id'],
  ['an alias climbing out', { objects: obj('objectName: s1\nobjectType: secret\nobjectAlias: ../etc/passwd') }, 'InvalidArgument', "must not contain '..'"],
  ['an absolute alias', { objects: obj('objectName: s1\nobjectType: secret\nobjectAlias: /etc/passwd') }, 'InvalidArgument', 'must be a relative path'],
  ['a filePermission that is not octal', { objects: obj('objectName: s1\nobjectType: secret\nfilePermission: 0900') }, 'InvalidArgument', "filePermission '0900' must be an octal file mode"],
  ['a misspelt object field', { objects: obj('objectname: s1\nobjectType: secret') }, 'InvalidArgument', "unknown field 'objectname' (did you mean 'objectName'?)"],
  ['two objects writing one file', { objects: 'array:\n  - |\n    objectName: s1\n    objectType: secret\n  - |\n    objectName: s1\n    objectType: key\n' }, 'InvalidArgument', 'give one of them an objectAlias'],
  ['service-account tokens that are not JSON', { 'csi.storage.k8s.io/serviceAccount.tokens': '{' }, 'InvalidArgument', 'serviceAccount.tokens is not valid JSON'],
  ['no token for the audience', { 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ other: { token: 'x' } }) }, 'Unauthenticated', 'no service-account token for audience api://AzureADTokenExchange'],
  ['a token that is not a JWT', {}, 'Unauthenticated', 'is not a JWT', { token: 'not-a-jwt' }],
];

// A rest parameter: with a fixed arity Jest would take a missing `opts` for a done callback.
test.each(cases)('%s', (...row) => {
  const [, params, code, message, opts] = row;
  expectError(() => attempt(params, opts), code, message);
});

test('an expired token is refused before any call, naming when it expired', () => {
  expectError(() => attempt({}, { token: expiredToken }), 'Unauthenticated', /expired at \d{4}-/);
});

test('valid parameters parse into a typed description', () => {
  const p = attempt({ tenantId: 'legacy-tenant', tenantID: '', objects: obj('objectName: s1\nobjectType: secret\nobjectVersionHistory: 2\nobjectAlias: dir/s\nfilePermission: 0600\nobjectEncoding: BasE64') });
  expect(p).toMatchObject({ vaultName: 'kv1', tenantId: 'legacy-tenant', cloud: { keyVaultDnsSuffix: 'vault.azure.net' }, identity: { mode: 'workloadIdentity', clientId: 'client-1', tokenSubject: 'system:serviceaccount:ns:sa' } });
  expect(p.objects).toEqual([{ name: 's1', type: 'secret', version: '', versionHistory: 2, fileName: 'dir/s', encoding: 'base64', format: 'pem', mode: 0o600, modeText: '0600' }]);
});

test('a service principal from the node-publish secret, keys matched case-insensitively', () => {
  expect(attempt(noClient, { secrets: { ClientID: 'sp', ClientSecret: 'pw' }, token: null }).identity).toEqual({ mode: 'servicePrincipal', clientId: 'sp', clientSecret: 'pw' });
});

test('sovereign clouds resolve their Key Vault suffix', () => {
  expect(attempt({ cloudName: 'azurechinacloud' }).cloud.keyVaultDnsSuffix).toBe('vault.azure.cn');
  expect(attempt({ cloudName: 'AzureUSGovernmentCloud' }).cloud.keyVaultDnsSuffix).toBe('vault.usgovcloudapi.net');
});
