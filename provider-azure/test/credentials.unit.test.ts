// Per-identity state is bounded and eviction is correct: a tenant minting identities (a new
// clientID per SecretProviderClass) can neither grow the provider's memory nor poison the cache
// so that later identities fail once their first Entra token expires.
import { Budgets } from '../src/budget.js';
import type { CloudEnvironment } from '../src/cloud.js';
import { Credentials } from '../src/credentials.js';
import { toProviderError } from '../src/errors.js';
import { createMetrics } from '../src/metrics.js';
import type { Identity } from '../src/params.js';
import { KeyVaultAccess } from '../src/vault.js';

const cloud: CloudEnvironment = {
  name: 'AzurePublicCloud',
  keyVaultDnsSuffix: 'vault.azure.net',
  authorityHost: 'https://login.microsoftonline.com',
};
const wi = (clientId: string, token = 'header.payload.sig'): Identity => ({
  mode: 'workloadIdentity',
  clientId,
  token,
  tokenIssuer: 'https://issuer',
  tokenSubject: `system:serviceaccount:ns:${clientId}`,
});

test('with a bound of 2, a third identity evicts the least recently used one, never itself', () => {
  const creds = new Credentials(2);
  const a = creds.get(wi('a'), 't', cloud);
  creds.get(wi('b'), 't', cloud);
  creds.get(wi('a'), 't', cloud); // a is now the most recently used
  const c = creds.get(wi('c'), 't', cloud);
  expect(creds.size).toBe(2);
  expect(creds.get(wi('c'), 't', cloud).credential).toBe(c.credential); // the newcomer was kept
  expect(creds.get(wi('a'), 't', cloud).credential).toBe(a.credential); // kept: recently used
  expect(creds.size).toBe(2);
});

test('5 000 identities in a row keep every newcomer usable and the map at its bound', () => {
  const creds = new Credentials(100);
  for (let i = 0; i < 5_000; i++) {
    const first = creds.get(wi(`id-${i}`), 't', cloud).credential;
    expect(creds.get(wi(`id-${i}`), 't', cloud).credential).toBe(first);
  }
  expect(creds.size).toBe(100);
});

describe("Key Vault clients follow their identity's credential and are bounded", () => {
  const access = () =>
    new KeyVaultAccess(
      {
        maxRetries: 0,
        cacheTtlMs: 0,
        cacheMaxBytes: 0,
        maxClients: 3,
        authWindowMs: 60_000,
        maxVaultLabels: 10,
        requestTimeoutMs: 20_000,
        readShareMs: 0,
        readShareWithEventsMs: 0,
      },
      new Budgets({ ratePerSecond: 10, burst: 10, maxConcurrency: 1 }),
      createMetrics(),
    );
  const credentialOf = (session: unknown) => (session as { clients: { credential: unknown } }).clients.credential;

  test('a new credential for the same identity (after eviction) gets new clients, not the old frozen one', () => {
    const kv = access();
    const creds = new Credentials(1);
    const first = creds.get(wi('a', 'token-1'), 't', cloud);
    expect(
      credentialOf(
        kv.session({
          vaultUrl: 'https://kv.vault.azure.net/',
          vaultName: 'kv',
          credential: first.credential,
          identityKey: first.key,
        }),
      ),
    ).toBe(first.credential);
    creds.get(wi('b'), 't', cloud); // evicts a
    const again = creds.get(wi('a', 'token-2'), 't', cloud);
    expect(again.credential).not.toBe(first.credential);
    expect(
      credentialOf(
        kv.session({
          vaultUrl: 'https://kv.vault.azure.net/',
          vaultName: 'kv',
          credential: again.credential,
          identityKey: again.key,
        }),
      ),
    ).toBe(again.credential);
  });

  test('at most maxClients client sets are kept', () => {
    const kv = access();
    const creds = new Credentials(100);
    for (let i = 0; i < 20; i++) {
      const c = creds.get(wi(`id-${i}`), 't', cloud);
      kv.session({
        vaultUrl: `https://kv${i}.vault.azure.net/`,
        vaultName: `kv${i}`,
        credential: c.credential,
        identityKey: c.key,
      });
    }
    expect(kv.clientCount).toBe(3);
  });
});

test("a tenantID that is not the vault's is told with both tenants, not with an SDK option a class cannot set", async () => {
  const classTenant = '11111111-1111-1111-1111-111111111111';
  const vaultTenant = '22222222-2222-2222-2222-222222222222';
  const { credential } = new Credentials().get(wi('app'), classTenant, cloud);
  // What the Key Vault SDK asks after the vault's 401 challenge named its tenant.
  const refused = await credential.getToken('https://vault.azure.net/.default', { tenantId: vaultTenant }).then(
    () => undefined,
    (e: unknown) => e,
  );
  const e = toProviderError(refused, 'kv1', "secret 'db'");
  expect(e).toMatchObject({ code: 'Unauthenticated', reason: 'WrongTenant' });
  expect(e.message).toContain(`tenantID '${classTenant}' is not the tenant of vault 'kv1' (${vaultTenant}`);
  expect(e.message).not.toMatch(/AdditionallyAllowedTenants|Entra ID refused/i);
});
