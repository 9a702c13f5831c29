// The node's managed identity over IMDS — what an AKS node serves, at AZURE_POD_IDENTITY_AUTHORITY_HOST
// here since 169.254.169.254 is out of reach (App Service's protocol is tested in provider.int.test.ts)
// — and Entra token requests as other MSAL clients send them.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SecretClient } from '@azure/keyvault-secrets';
import { AzureStack, vaultUrl } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { kube, tempNamespace } from '../../test/helpers/kube.js';
import { objectsYaml } from '../../test/helpers/fixtures.js';
import { mountRequest, startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `mi-${Date.now().toString(36)}`;
const objects = objectsYaml([{ objectName: 'node-secret', objectType: 'secret' }]);
let ns: Awaited<ReturnType<typeof tempNamespace>>;
const providers: RunningProviderProcess[] = [];

/** A node of its own (its own IMDS port), so test files running at once never share one. */
const node = (name: string) => `${name}-${vault}`;

const text = (files: { path: string; contents: Buffer }[]) =>
  Object.fromEntries(files.map((f) => [f.path, f.contents.toString('utf8')]));

/**
 * The provider as on an AKS node: IMDS at `imdsHost`, no App Service variables, the test namespace
 * bound to the node's default identity and to the user-assigned ones given (`*`: every one).
 */
async function providerOn(imdsHost: string, userAssigned: string[] = []): Promise<RunningProviderProcess> {
  const entries = [ns.name, ...userAssigned.map((id) => `${ns.name}=${id}`)];
  const p = await startProvider({
    args: ['--allow-node-identity=true', `--node-identity-namespaces=${entries.join(',')}`],
    env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsHost },
  });
  providers.push(p);
  return p;
}

function mount(p: RunningProviderProcess, extra: Record<string, string> = {}) {
  return p.client.mount(
    mountRequest({
      parameters: { keyvaultName: vault, tenantID: azure.tenantId, objects, useVMManagedIdentity: 'true', ...extra },
      namespace: ns.name,
    }),
  );
}

/** An identity with read access to the test vault. */
async function identity(name: string) {
  const id = await azure.createIdentity(`${name}-${vault}`);
  await azure.assignRole('Key Vault Secrets User', id.clientId, vault);
  return id;
}

function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  expect(process.env.IDENTITY_ENDPOINT).toBeUndefined(); // else MSAL would pick App Service's protocol
  ns = await tempNamespace(k.core, 'mi');
  await azure.createVault(vault);
  await azure.setSecret(vault, 'node-secret', 'node-identity-value');
});

afterAll(async () => {
  for (const p of providers) await p.stop();
  await ns?.dispose();
});

describe("the node's managed identity over IMDS", () => {
  test('the stand-in answers as IMDS does: Metadata header required, identities by client_id / object_id / msi_res_id, string fields', async () => {
    const system = await identity('imds-system');
    const user = await identity('imds-user');
    const stray = await identity('imds-stray');
    const { imdsHost } = await azure.configureManagedIdentity({
      header: '',
      node: node('shape'),
      systemAssigned: system.clientId,
      attached: [user.clientId],
    });
    const token = `${imdsHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent('https://vault.azure.net')}`;
    const meta = { Metadata: 'true' };
    expect(await get(token)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'Required metadata header not specified' },
    });
    // @azure/identity's availability probe: the path alone, no query, no header.
    expect((await get(`${imdsHost}/metadata/identity/oauth2/token`)).status).toBe(400);
    const ok = await get(token, meta);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      token_type: 'Bearer',
      resource: 'https://vault.azure.net',
      client_id: system.clientId,
    });
    for (const field of ['access_token', 'expires_in', 'expires_on', 'not_before'])
      expect(typeof ok.body[field]).toBe('string'); // strings, as IMDS sends them
    expect(Number(ok.body.expires_on) - Number(ok.body.not_before)).toBe(Number(ok.body.expires_in));
    expect((await get(`${token}&client_id=${user.clientId}`, meta)).body).toMatchObject({ client_id: user.clientId });
    expect((await get(`${token}&object_id=${user.principalId}`, meta)).body).toMatchObject({
      client_id: user.clientId,
    });
    const armId = `/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/MC_rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${user.name}`;
    expect((await get(`${token}&msi_res_id=${encodeURIComponent(armId)}`, meta)).body).toMatchObject({
      client_id: user.clientId,
    });
    expect(await get(`${token}&client_id=${stray.clientId}`, meta)).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: 'Identity not found' },
    });
  });

  test('system-assigned works, a user-assigned one via userAssignedIdentityID works, one not attached is UNAUTHENTICATED naming it', async () => {
    const system = await identity('node-system');
    const user = await identity('node-user');
    const stray = await identity('node-stray');
    const { imdsHost } = await azure.configureManagedIdentity({
      header: '',
      node: node('main'),
      systemAssigned: system.clientId,
      attached: [user.clientId],
    });
    const p = await providerOn(imdsHost, [user.clientId, stray.clientId]);
    expect(text((await mount(p)).files)).toEqual({ 'node-secret': 'node-identity-value' });
    expect(text((await mount(p, { userAssignedIdentityID: user.clientId })).files)).toEqual({
      'node-secret': 'node-identity-value',
    });
    await expect(mount(p, { userAssignedIdentityID: stray.clientId })).rejects.toMatchObject({
      code: 16,
      reason: 'IdentityNotFound',
      details: expect.stringContaining(
        `no managed identity with client ID '${stray.clientId}' (userAssignedIdentityID) is attached to this node`,
      ),
    });
    const imds = (await azure.stats()).tokenRequests.filter((t) => t.endpoint === 'imds');
    expect(imds.filter((t) => t.outcome === 'ok').map((t) => t.clientId)).toEqual(
      expect.arrayContaining([system.clientId, user.clientId]),
    );
  });

  test('a node with only user-assigned identities: without userAssignedIdentityID the user is told to set it', async () => {
    const kubelet = await identity('kubelet');
    const addon = await identity('addon');
    const { imdsHost } = await azure.configureManagedIdentity({
      header: '',
      node: node('user-only'),
      attached: [kubelet.clientId, addon.clientId],
    });
    const p = await providerOn(imdsHost, [kubelet.clientId]);
    const several = (await mount(p).catch((e: unknown) => e)) as { code: number; details: string; reason?: string };
    expect(several).toMatchObject({ code: 16, reason: 'MultipleUserAssignedIdentities' });
    expect(several.details).toContain('set userAssignedIdentityID to the client ID of the one to use');
    expect(several.details).toContain('Multiple user assigned identities exist'); // what IMDS said, for searching
    expect(text((await mount(p, { userAssignedIdentityID: kubelet.clientId })).files)).toEqual({
      'node-secret': 'node-identity-value',
    });
    // The same node with no identity at all: IMDS has nothing to give for the system-assigned one.
    await azure.configureManagedIdentity({ header: '', node: node('user-only'), attached: [] });
    const none = (await mount(p).catch((e: unknown) => e)) as { code: number; details: string; reason?: string };
    expect(none).toMatchObject({ code: 16, reason: 'IdentityNotFound' });
    expect(none.details).toContain('the node has no system-assigned managed identity');
    expect(none.details).toContain(
      'set userAssignedIdentityID to the client ID of a user-assigned identity attached to the node',
    );
    // With exactly one user-assigned identity IMDS uses it when none is named (managed identities FAQ).
    await azure.configureManagedIdentity({ header: '', node: node('user-only'), attached: [kubelet.clientId] });
    expect(text((await mount(p)).files)).toEqual({ 'node-secret': 'node-identity-value' });
  });
});

describe('node identities bound to namespaces', () => {
  test('a namespace uses only the identities bound to it: another attached one, or the default, is refused before IMDS is asked; =* allows every one, with a warning', async () => {
    const system = await identity('bound-system');
    const kubelet = await identity('bound-kubelet');
    const addon = await identity('bound-addon');
    const { imdsHost } = await azure.configureManagedIdentity({
      header: '',
      node: node('bound'),
      systemAssigned: system.clientId,
      attached: [kubelet.clientId, addon.clientId],
    });
    const asked = async () =>
      (await azure.stats()).tokenRequests.filter(
        (t) => t.endpoint === 'imds' && [system.clientId, addon.clientId].includes(t.clientId),
      ).length;
    // Bound to the kubelet identity only; the add-on's is another namespace's.
    const p = await startProvider({
      args: [
        '--allow-node-identity=true',
        `--node-identity-namespaces=${ns.name}=${kubelet.clientId},other-team=${addon.clientId}`,
      ],
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsHost },
    });
    providers.push(p);
    expect(text((await mount(p, { userAssignedIdentityID: kubelet.clientId })).files)).toEqual({
      'node-secret': 'node-identity-value',
    });
    const before = await asked();
    // Before, any identity attached to the node was the namespace's for the naming.
    await expect(mount(p, { userAssignedIdentityID: addon.clientId })).rejects.toMatchObject({
      code: 3,
      details: expect.stringContaining(
        `namespace '${ns.name}' may not use the identity '${addon.clientId}' (userAssignedIdentityID): it may use '${kubelet.clientId}'`,
      ),
    });
    await expect(mount(p)).rejects.toMatchObject({
      code: 3,
      details: expect.stringContaining(`namespace '${ns.name}' may not use the node's default identity`),
    });
    expect(await asked()).toBe(before);
    expect(p.logs()).not.toContain('every managed identity attached to the node');

    const any = await providerOn(imdsHost, ['*']);
    expect(text((await mount(any, { userAssignedIdentityID: addon.clientId })).files)).toEqual({
      'node-secret': 'node-identity-value',
    });
    expect(text((await mount(any)).files)).toEqual({ 'node-secret': 'node-identity-value' });
    const warning = any
      .logs()
      .split('\n')
      .find((l) => l.includes('every managed identity attached to the node'));
    expect(JSON.parse(warning!)).toMatchObject({ level: 'warn', namespaces: [ns.name] });
  });
});

describe('IMDS not answering one request', () => {
  test('that Mount fails naming IMDS within 12 s; the hung request holds nothing, the next Mount gets a token at once', async () => {
    const user = await identity('node-hang');
    const { imdsHost } = await azure.configureManagedIdentity({
      header: '',
      node: node('hang'),
      attached: [user.clientId],
    });
    const p = await providerOn(imdsHost, [user.clientId]);
    await azure.injectFault({
      target: 'entra',
      pathPattern: '/metadata/identity/oauth2/token',
      clientId: user.clientId,
      status: 500,
      delayMs: 100_000,
      count: 1,
    });
    try {
      await expect(mount(p, { userAssignedIdentityID: user.clientId })).rejects.toMatchObject({
        code: 14,
        reason: 'ManagedIdentityTimeout',
        details: expect.stringContaining(`IMDS (${imdsHost}) gave no token within 12 s`),
      });
      const started = Date.now();
      expect(text((await mount(p, { userAssignedIdentityID: user.clientId })).files)).toEqual({
        'node-secret': 'node-identity-value',
      });
      expect(Date.now() - started).toBeLessThan(5_000); // not waiting on the hung request (100 s)
    } finally {
      await azure.clearFaults();
    }
  });
});

describe('IMDS failing: every Mount ends within its deadline', () => {
  let imds: Server;
  let mode: 'gone' | 'silent' = 'gone';
  let requests = 0;
  beforeAll(async () => {
    // Not the stand-in: an IMDS that is being updated answers 410 for up to 70 s (why @azure/identity
    // retries 410 for at least that long, see its imdsRetryPolicy), or does not answer at all.
    imds = createServer((req, res) => {
      requests++;
      if (mode === 'gone') {
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'service_unavailable', error_description: 'Gone' }));
      }
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    imds.closeAllConnections();
    await new Promise((r) => imds.close(r));
  });

  // Within the Key Vault read's 20 s too, so the failure is laid at IMDS's door, not Key Vault's.
  test.each([
    ['answering 410', 'gone', 'ManagedIdentity410', 'answered 410'],
    ['not answering', 'silent', 'ManagedIdentityTimeout', 'gave no token within 12 s'],
  ] as const)('IMDS %s: UNAVAILABLE, naming IMDS, within 20 s', async (_, m, reason, says) => {
    mode = m;
    requests = 0;
    const host = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
    const p = await providerOn(host);
    const started = Date.now();
    await expect(mount(p)).rejects.toMatchObject({
      code: 14,
      reason,
      details: expect.stringContaining(`IMDS (${host}) ${says}`),
    });
    expect(Date.now() - started).toBeLessThan(20_000);
    if (m === 'gone') expect(requests).toBe(3); // two retries, not five over 70 s
  });
});

describe('other Entra clients', () => {
  function postToken(form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const body = new URLSearchParams(form).toString();
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${info.azure.authorityHost}/${azure.tenantId}/oauth2/v2.0/token`,
        {
          method: 'POST',
          ca: readFileSync(info.caFile, 'utf8'),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  test("MSAL for Go's client-credentials request (the .default scope plus openid offline_access profile) gets a token Key Vault accepts", async () => {
    const secret = 'go-client-secret-value-1';
    const sp = await azure.createIdentity(`go-client-${vault}`, secret);
    await azure.assignRole('Key Vault Secrets User', sp.clientId, vault);
    // As MSAL Go's FromClientSecret sends it (addScopeQueryParam appends the OIDC scopes).
    const res = await postToken({
      grant_type: 'client_credentials',
      client_secret: secret,
      client_id: sp.clientId,
      scope: 'https://vault.azure.net/.default openid offline_access profile',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer' });
    const accessToken = String(res.body.access_token);
    const client = new SecretClient(vaultUrl(vault), {
      getToken: async () => ({ token: accessToken, expiresOnTimestamp: Date.now() + 600_000 }),
    });
    expect((await client.getSecret('node-secret')).value).toBe('node-identity-value');
    // Two resources in one request, or no .default at all, are refused as Entra refuses them.
    await expect(
      postToken({
        grant_type: 'client_credentials',
        client_secret: secret,
        client_id: sp.clientId,
        scope: 'https://vault.azure.net/.default https://storage.azure.com/.default openid',
      }),
    ).resolves.toMatchObject({ status: 400, body: { error: 'invalid_scope', error_codes: [70011] } });
    await expect(
      postToken({
        grant_type: 'client_credentials',
        client_secret: secret,
        client_id: sp.clientId,
        scope: 'openid profile offline_access',
      }),
    ).resolves.toMatchObject({ status: 400, body: { error: 'invalid_scope', error_codes: [1002012] } });
  });
});
