// Proves the Azure side is real enough to trust: workload identity federation through the Entra
// stand-in with a real service-account token, Key Vault RBAC, versions, disabled versions,
// certificates and keys, all through the real Azure SDK against https://<vault>.vault.azure.net/.
import { ClientAssertionCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { KeyClient } from '@azure/keyvault-keys';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import forge from 'node-forge';
import { AzureStack, vaultUrl } from '../env/azure/client.js';
import { createCa } from '../env/pki.js';
import { loadStackInfo } from '../env/stack.js';
import { kube, tempNamespace } from '../helpers/kube.js';

const AUDIENCE = 'api://AzureADTokenExchange';
const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
const vault = `kv-${Date.now().toString(36)}`;
let identity: Awaited<ReturnType<AzureStack['createIdentity']>>;

async function saToken(sa: string, audiences = [AUDIENCE]): Promise<string> {
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: ns.name,
    body: { spec: { audiences, expirationSeconds: 600 } },
  });
  return tr.status?.token ?? '';
}

function credential(clientId: string, assertion: () => Promise<string>) {
  return new ClientAssertionCredential(azure.tenantId, clientId, assertion, {
    authorityHost: info.azure.authorityHost,
    disableInstanceDiscovery: true,
    retryOptions: { maxRetries: 0 },
  });
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'smoke-az');
  for (const name of ['workload', 'other'])
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
  await azure.createVault(vault);
  identity = await azure.createIdentity(`id-${ns.name}`);
  await azure.addFederatedCredential(identity.clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', identity.clientId, vault);
  await azure.assignRole('Key Vault Reader', identity.clientId, vault);
});
afterAll(async () => {
  await ns.dispose();
});

test('a service-account token is exchanged through the Entra stand-in and reads two versions of a secret', async () => {
  const v1 = await azure.setSecret(vault, 'my-secret', 'Hello!');
  const v2 = await azure.setSecret(vault, 'my-secret', 'Hello2');
  const client = new SecretClient(
    vaultUrl(vault),
    credential(identity.clientId, () => saToken('workload')),
  );
  expect((await client.getSecret('my-secret')).value).toBe('Hello2');
  expect((await client.getSecret('my-secret', { version: v1 })).value).toBe('Hello!');
  const versions: string[] = [];
  for await (const p of client.listPropertiesOfSecretVersions('my-secret')) versions.push(p.version ?? '');
  expect(versions.sort()).toEqual([v1, v2].sort());
  // The vault saw a token minted for exactly this identity.
  const stats = await azure.stats();
  expect(
    stats.tokenRequests.some(
      (t) => t.clientId === identity.clientId && t.grant === 'client_assertion' && t.outcome === 'ok',
    ),
  ).toBe(true);
});

test.each([
  ['another audience', () => saToken('workload', ['some-other-audience']), 'AADSTS700212'],
  ['another subject', () => saToken('other'), 'AADSTS700213'],
])('a token for %s is refused with the right AADSTS code', async (_what, assertion, code) => {
  const client = new SecretClient(vaultUrl(vault), credential(identity.clientId, assertion));
  await expect(client.getSecret('my-secret')).rejects.toThrow(code);
});

test('an expired or forged service-account token is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  const claims = { 'kubernetes.io': { namespace: ns.name, serviceaccount: { name: 'workload' } } };
  const sign = (key: Parameters<SignJWT['sign']>[0], iat: number) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(info.k8s.issuer)
      .setSubject(`system:serviceaccount:${ns.name}:workload`)
      .setAudience(AUDIENCE)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + 600)
      .sign(key);
  // Signed with the apiserver's own key, an hour ago: a real token that has expired.
  const apiserverKey = createPrivateKey(readFileSync(join(info.k8s.caFile, '..', 'sa.key')));
  const expired = await sign(apiserverKey, now - 3600);
  await expect(
    new SecretClient(
      vaultUrl(vault),
      credential(identity.clientId, async () => expired),
    ).getSecret('my-secret'),
  ).rejects.toThrow('AADSTS700024');
  // Right claims, wrong key.
  const forged = await sign(createPrivateKey(createCa().key), now);
  await expect(
    new SecretClient(
      vaultUrl(vault),
      credential(identity.clientId, async () => forged),
    ).getSecret('my-secret'),
  ).rejects.toThrow('AADSTS700027');
});

test('an unknown client id is refused with AADSTS700016', async () => {
  const client = new SecretClient(
    vaultUrl(vault),
    credential('00000000-0000-0000-0000-00000000abcd', () => saToken('workload')),
  );
  await expect(client.getSecret('my-secret')).rejects.toThrow('AADSTS700016');
});

test('an identity without a role assignment on the vault gets 403 ForbiddenByRbac', async () => {
  const bare = await azure.createIdentity(`bare-${ns.name}`);
  await azure.addFederatedCredential(bare.clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.setSecret(vault, 'locked', 'x');
  const client = new SecretClient(
    vaultUrl(vault),
    credential(bare.clientId, () => saToken('workload')),
  );
  await expect(client.getSecret('locked')).rejects.toMatchObject({ statusCode: 403, code: 'Forbidden' });
  // Key Vault Reader alone shows metadata but not values.
  await azure.assignRole('Key Vault Reader', bare.clientId, vault);
  const names: string[] = [];
  for await (const p of client.listPropertiesOfSecrets()) names.push(p.name);
  expect(names).toContain('locked');
  await expect(client.getSecret('locked')).rejects.toMatchObject({ statusCode: 403 });
});

test('a disabled version answers 403 while the others stay readable', async () => {
  const old = await azure.setSecret(vault, 'rotating', 'old');
  await azure.setSecret(vault, 'rotating', 'new');
  await azure.disableSecretVersion(vault, 'rotating', old);
  const client = new SecretClient(
    vaultUrl(vault),
    credential(identity.clientId, () => saToken('workload')),
  );
  await expect(client.getSecret('rotating', { version: old })).rejects.toMatchObject({ statusCode: 403 });
  expect((await client.getSecret('rotating')).value).toBe('new');
});

function chainFixture() {
  const root = createCa('smoke root');
  const leaf = root.issue({ commonName: 'app.example.test', dnsNames: ['app.example.test'], usage: 'server' });
  return { root, leaf };
}

test('an imported PEM certificate keeps its whole chain in the backing secret', async () => {
  const { root, leaf } = chainFixture();
  const { version } = await azure.importCertificate(vault, 'pem-cert', { pem: leaf.key + leaf.cert + root.cert });
  const cert = await azure.certificates(vault).getCertificate('pem-cert');
  expect(cert.properties.version).toBe(version);
  expect(new X509Certificate(Buffer.from(cert.cer!)).subject).toContain('CN=app.example.test');
  const backing = await azure.secrets(vault).getSecret('pem-cert');
  expect(backing.properties.contentType).toBe('application/x-pem-file');
  expect(backing.properties.managed).toBe(true);
  expect(backing.value).toContain('PRIVATE KEY');
  expect(backing.value?.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
});

test('an imported password-protected PFX is served back as a password-less PFX with its chain', async () => {
  const { root, leaf } = chainFixture();
  const p12 = forge.pkcs12.toPkcs12Asn1(
    forge.pki.privateKeyFromPem(createPrivateKey(leaf.key).export({ type: 'pkcs1', format: 'pem' }).toString()),
    [forge.pki.certificateFromPem(leaf.cert), forge.pki.certificateFromPem(root.cert)],
    's3cret',
    { algorithm: '3des' },
  );
  await azure.importCertificate(vault, 'pfx-cert', {
    pfx: Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary'),
    password: 's3cret',
  });
  const backing = await azure.secrets(vault).getSecret('pfx-cert');
  expect(backing.properties.contentType).toBe('application/x-pkcs12');
  const parsed = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.decode64(backing.value ?? '')), '');
  const certs = parsed.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  expect(certs.map((b) => b.cert?.subject.getField('CN')?.value).sort()).toEqual(['app.example.test', 'smoke root']);
});

test('RSA and EC keys are created and only their public half is served', async () => {
  await azure.createKey(vault, 'rsa-key', { kty: 'RSA', size: 3072 });
  await azure.createKey(vault, 'ec-key', { kty: 'EC', curve: 'P-384' });
  const reader = new KeyClient(
    vaultUrl(vault),
    credential(identity.clientId, () => saToken('workload')),
  );
  const rsa = await reader.getKey('rsa-key');
  expect(rsa.key?.kty).toBe('RSA');
  expect(rsa.key?.n?.length).toBe(384);
  expect(rsa.key?.d).toBeUndefined();
  const ec = await reader.getKey('ec-key');
  expect(ec.key?.crv).toBe('P-384');
  expect(ec.key?.d).toBeUndefined();
});
