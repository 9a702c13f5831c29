// Where real Key Vault and Entra ID differ from what a naive stand-in would do, and what the
// provider must do about it (issue #15). Each case runs the provider process through the real
// Azure SDK against the stand-ins, which follow the real services (sources in their comments).
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzureStack } from '../../test/env/azure/client.js';
import { createCa } from '../../test/env/pki.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { kube, tempNamespace } from '../../test/helpers/kube.js';
import { azureParameters } from '../../test/helpers/fixtures.js';
import { mountRequest, startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `ra-${Date.now().toString(36)}`;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let clientId: string;

async function token(): Promise<string> {
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: 'workload',
    namespace: ns.name,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
  });
  return tr.status!.token;
}

async function mount(objects: Record<string, string | number>[], extra: Record<string, string> = {}, via = provider) {
  const parameters = {
    ...azureParameters({ keyvaultName: vault, tenantID: azure.tenantId, clientID: clientId, objects }),
    ...extra,
  };
  return via.client.mount(
    mountRequest({ parameters, token: await token(), namespace: ns.name, serviceAccount: 'workload' }),
  );
}

const text = (files: { path: string; contents: Buffer }[]) =>
  Object.fromEntries(files.map((f) => [f.path, f.contents.toString('utf8')]));
const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** A vault of this test's, readable by its identity. */
async function newVault(prefix: string, opts: { dnsSuffix?: string } = {}): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}`;
  await azure.createVault(name, opts);
  await azure.assignRole('Key Vault Secrets User', clientId, name);
  await azure.assignRole('Key Vault Reader', clientId, name);
  return name;
}

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'realaz');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  const id = await azure.createIdentity(`realaz-${ns.name}`);
  clientId = id.clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.createVault(vault);
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  await azure.assignRole('Key Vault Reader', clientId, vault);
  await azure.setSecret(vault, 'plain', 'plain-value');
  provider = await startProvider();
});

afterAll(async () => {
  await provider?.stop();
  await ns?.dispose();
});

describe('throttling', () => {
  test("the vault's own 429s carry no Retry-After (as real ones often do not) and are backed off until the window frees", async () => {
    const busy = await newVault('thr');
    for (const n of ['a', 'b', 'c']) await azure.setSecret(busy, n, `value-${n}`);
    await azure.updateVault(busy, { throttleLimit: 2, throttleRetryAfter: false });
    // Six backoffs (0.5 s doubling to 8 s, jittered) outlast Key Vault's 10 s window; the SDK alone gives up at the first 429.
    const patient = await startProvider({ args: ['--vault-max-retries=6'] });
    try {
      const res = await mount(
        ['a', 'b', 'c'].map((n) => ({ objectName: n, objectType: 'secret' })),
        { keyvaultName: busy },
        patient,
      );
      expect(text(res.files)).toEqual({ a: 'value-a', b: 'value-b', c: 'value-c' });
      const counts = (await azure.stats()).vaultRequests;
      expect(counts[`${busy} secrets/get 429`]).toBeGreaterThan(0);
    } finally {
      await patient.stop();
      await azure.updateVault(busy, { throttleLimit: 4000 });
    }
  }, 60_000);
});

describe('version history', () => {
  test("/0 is the vault's current version even when versions made in one second list in the other order", async () => {
    const hist = await newVault('hist');
    const secrets = azure.secrets(hist);
    // Key Vault lists versions by id and stamps them to the second: find two versions of one
    // second whose ids sort against their age (half of all same-second pairs do).
    let found: { older: string; newer: string } | undefined;
    for (let i = 0; i < 40 && !found; i++) {
      const a = await secrets.setSecret(`s${i}`, `older-${i}`);
      const b = await secrets.setSecret(`s${i}`, `newer-${i}`);
      if (
        a.properties.createdOn?.getTime() === b.properties.createdOn?.getTime() &&
        b.properties.version! < a.properties.version!
      )
        found = { older: `s${i}`, newer: `s${i}` };
    }
    expect(found).toBeDefined();
    const name = found!.newer;
    const latest = await secrets.getSecret(name);
    expect(latest.value).toMatch(/^newer-/);
    const res = await mount([{ objectName: name, objectType: 'secret', objectVersionHistory: 2 }], {
      keyvaultName: hist,
    });
    const files = text(res.files);
    expect(files[`${name}/0`]).toBe(latest.value);
    expect(files[`${name}/1`]).toMatch(/^older-/);
    expect(res.objectVersion.find((v) => v.id === `secret/${name}/0`)?.version).toBe(latest.properties.version);
  });
});

describe('tenants', () => {
  test('an uppercase tenant GUID works (the challenge names it in lowercase and the SDK compares exactly)', async () => {
    const res = await mount([{ objectName: 'plain', objectType: 'secret' }], {
      tenantID: azure.tenantId.toUpperCase(),
    });
    expect(text(res.files)).toEqual({ plain: 'plain-value' });
  });

  test('a domain tenant is refused before any call, saying how to find the GUID', async () => {
    const before = (await azure.stats()).tokenRequests.length;
    await expect(
      mount([{ objectName: 'plain', objectType: 'secret' }], { tenantID: 'contoso.onmicrosoft.com' }),
    ).rejects.toMatchObject({
      code: 3,
      details: expect.stringContaining("set the tenant's GUID instead (az account show --query tenantId -o tsv)"),
    });
    expect((await azure.stats()).tokenRequests.length).toBe(before);
  });
});

describe('403s say which refusal it was', () => {
  test.each([
    ['privateLinkOnly', 'ForbiddenByConnection', 'private endpoint'],
    ['firewall', 'ForbiddenByFirewall', "firewall does not allow this cluster's address"],
  ] as const)('network %s → PERMISSION_DENIED %s, not "disabled version"', async (network, reason, advice) => {
    const closed = await newVault('net');
    await azure.setSecret(closed, 'x', 'y');
    await azure.updateVault(closed, { network });
    const err = await mount([{ objectName: 'x', objectType: 'secret' }], { keyvaultName: closed }).then(
      () => undefined,
      (e: { code: number; reason: string; details: string }) => e,
    );
    expect(err).toMatchObject({ code: 7, reason });
    expect(err!.details).toContain(advice);
    expect(err!.details).not.toMatch(/version is disabled/);
  });

  test('no role → PERMISSION_DENIED ForbiddenByRbac naming the role to assign', async () => {
    const other = `rbac-${Date.now().toString(36)}`;
    await azure.createVault(other);
    await azure.setSecret(other, 'x', 'y');
    await expect(mount([{ objectName: 'x', objectType: 'secret' }], { keyvaultName: other })).rejects.toMatchObject({
      code: 7,
      reason: 'ForbiddenByRbac',
      details: expect.stringContaining('Key Vault Secrets User'),
    });
  });
});

describe('sovereign clouds', () => {
  test.each([
    ['AzureChinaCloud', 'vault.azure.cn'],
    ['AzureUSGovernmentCloud', 'vault.usgovcloudapi.net'],
  ])('%s: the challenge names %s and a Mount reads through it', async (cloudName, dnsSuffix) => {
    const sovereign = await newVault('cloud', { dnsSuffix });
    await azure.setSecret(sovereign, 'regional', `from-${dnsSuffix}`);
    const res = await mount([{ objectName: 'regional', objectType: 'secret' }], { keyvaultName: sovereign, cloudName });
    expect(text(res.files)).toEqual({ regional: `from-${dnsSuffix}` });
    // The same name in the public cloud does not exist.
    await expect(
      mount([{ objectName: 'regional', objectType: 'secret' }], { keyvaultName: sovereign }),
    ).rejects.toMatchObject({
      code: 14,
      details: expect.stringContaining(`${sovereign}.vault.azure.net does not resolve`),
    });
  });
});

describe('certificates as Key Vault stores them', () => {
  const root = createCa('ra root');
  const intermediate = root.issueCa('ra intermediate');
  const leaf = intermediate.issue({ commonName: 'chain.test', dnsNames: ['chain.test'], usage: 'server' });

  test('a chain uploaded out of order comes back from the vault in upload order, and from the provider leaf → root', async () => {
    await azure.importCertificate(vault, 'scrambled', { pem: leaf.key + root.cert + leaf.cert + intermediate.cert });
    const stored = (await azure.secrets(vault).getSecret('scrambled')).value!;
    expect(stored.match(PEM_CERT)!.map((c) => new X509Certificate(c).subject)).toEqual([
      'CN=ra root',
      'CN=chain.test',
      'CN=ra intermediate',
    ]);
    const res = await mount([{ objectName: 'scrambled', objectType: 'secret' }]);
    const bundle = text(res.files)['scrambled']!;
    expect(bundle.match(PEM_CERT)!.map((c) => new X509Certificate(c).subject)).toEqual([
      'CN=chain.test',
      'CN=ra intermediate',
      'CN=ra root',
    ]);
  });

  test("a certificate's version pins its backing secret too (they share one version id)", async () => {
    const { version } = await azure.importCertificate(vault, 'pinned', { pem: leaf.key + leaf.cert });
    await azure.importCertificate(vault, 'pinned', { pem: leaf.key + leaf.cert });
    const res = await mount([
      { objectName: 'pinned', objectType: 'cert', objectVersion: version },
      { objectName: 'pinned', objectType: 'secret', objectVersion: version, objectAlias: 'pinned-bundle' },
    ]);
    expect(res.objectVersion.map((v) => v.version)).toEqual([version, version]);
  });

  test('an EC certificate imported as PFX is synced as PEM (key and certificate)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ec-pfx-'));
    try {
      const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      run(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=ec.test',
        '-days',
        '30',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
      );
      run('pkcs12', '-export', '-inkey', 'k.pem', '-in', 'c.pem', '-passout', 'pass:pw', '-out', 'c.p12');
      await azure.importCertificate(vault, 'ecpfx', { pfx: readFileSync(join(dir, 'c.p12')), password: 'pw' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const res = await mount([{ objectName: 'ecpfx', objectType: 'secret' }]);
    const pem = text(res.files)['ecpfx']!;
    const cert = new X509Certificate(pem.match(PEM_CERT)![0]!);
    expect(cert.subject).toBe('CN=ec.test');
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ec');
    expect(cert.checkPrivateKey(createPrivateKey(pem))).toBe(true);
  });

  test('disabled versions: a certificate and a key are still returned by Key Vault, and refused by the provider like a disabled secret', async () => {
    const { version } = await azure.importCertificate(vault, 'switched-off', { pem: leaf.key + leaf.cert });
    await azure.certificates(vault).updateCertificateProperties('switched-off', version, { enabled: false });
    // What the vault does: the certificate comes back marked disabled, its backing secret is 403.
    expect((await azure.certificates(vault).getCertificateVersion('switched-off', version)).properties.enabled).toBe(
      false,
    );
    await expect(mount([{ objectName: 'switched-off', objectType: 'cert' }])).rejects.toMatchObject({
      code: 9,
      reason: 'CertificateDisabled',
    });
    await expect(mount([{ objectName: 'switched-off', objectType: 'secret' }])).rejects.toMatchObject({
      code: 9,
      reason: 'SecretDisabled',
    });
    const keyVersion = await azure.createKey(vault, 'off-key', { kty: 'EC' });
    await azure.keys(vault).updateKeyProperties('off-key', keyVersion, { enabled: false });
    await expect(mount([{ objectName: 'off-key', objectType: 'key' }])).rejects.toMatchObject({
      code: 9,
      reason: 'KeyDisabled',
    });
  });
});

describe('vault names', () => {
  test('a misspelt vault name fails in DNS, as on the real service: UNAVAILABLE naming the host', async () => {
    const err = await mount([{ objectName: 'plain', objectType: 'secret' }], { keyvaultName: `${vault}x` }).then(
      () => undefined,
      (e: { code: number; reason: string; details: string }) => e,
    );
    expect(err).toMatchObject({ code: 14, reason: 'VaultUnreachable' });
    expect(err!.details).toContain(`${vault}x.vault.azure.net does not resolve`);
    expect(err!.details).toContain('check keyvaultName and cloudName');
  });
});
