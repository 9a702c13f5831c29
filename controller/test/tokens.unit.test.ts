// Token reuse: one TokenRequest per ServiceAccount and audience until 80 % of its life.
import { jest } from '@jest/globals';
import type { CoreV1Api } from '@kubernetes/client-node';
import { adviceFor } from '../src/messages.js';
import { createMetrics } from '../src/metrics.js';
import { failureReason, type SyncError } from '../src/reasons.js';
import { TokenCache } from '../src/tokens.js';

function fakeCore(fail?: { code: number; body: string }) {
  const calls: { name: string; namespace: string; audiences: string[] }[] = [];
  const api = {
    async createNamespacedServiceAccountToken(req: {
      name: string;
      namespace: string;
      body: { spec: { audiences: string[]; expirationSeconds: number } };
    }) {
      calls.push({ name: req.name, namespace: req.namespace, audiences: req.body.spec.audiences });
      if (fail) throw Object.assign(new Error('HTTP'), fail);
      return {
        status: {
          token: `token-${calls.length}`,
          expirationTimestamp: new Date(Date.now() + req.body.spec.expirationSeconds * 1000),
        },
      };
    },
  };
  return { api: api as unknown as CoreV1Api, calls };
}

afterEach(() => jest.useRealTimers());

test('a token is reused until 80 % of its life, then refreshed', async () => {
  jest.useFakeTimers({ now: 1_000_000 });
  const { api, calls } = fakeCore();
  const cache = new TokenCache(api, 600, createMetrics());
  const first = await cache.tokensFor('ns', 'sa', ['api://AzureADTokenExchange']);
  expect(first['api://AzureADTokenExchange']?.token).toBe('token-1');
  jest.setSystemTime(1_000_000 + 470_000);
  await cache.tokensFor('ns', 'sa', ['api://AzureADTokenExchange']);
  expect(calls).toHaveLength(1);
  jest.setSystemTime(1_000_000 + 490_000);
  const second = await cache.tokensFor('ns', 'sa', ['api://AzureADTokenExchange']);
  expect(second['api://AzureADTokenExchange']?.token).toBe('token-2');
  expect(calls).toHaveLength(2);
});

test('concurrent requests for one token share a TokenRequest; other ServiceAccounts get their own', async () => {
  const { api, calls } = fakeCore();
  const cache = new TokenCache(api, 600, createMetrics());
  await Promise.all([
    cache.tokensFor('ns', 'sa', ['a']),
    cache.tokensFor('ns', 'sa', ['a']),
    cache.tokensFor('ns', 'other', ['a']),
  ]);
  expect(calls.map((c) => c.name).sort()).toEqual(['other', 'sa']);
});

test('no audiences: no TokenRequest and no tokens (for providers that authenticate otherwise)', async () => {
  const { api, calls } = fakeCore();
  const cache = new TokenCache(api, 600, createMetrics());
  expect(await cache.tokensFor('ns', 'sa', [])).toEqual({});
  expect(calls).toHaveLength(0);
});

test.each([
  [404, '{"message":"serviceaccounts \\"ghost\\" not found"}', 'userInput', "ServiceAccount 'ghost' was not found"],
  [
    403,
    '{"message":"admission webhook denied: ValidatingAdmissionPolicy x denied request"}',
    'tokenPolicy',
    'was refused',
  ],
  [403, '{"message":"cannot create resource \\"serviceaccounts/token\\""}', 'internal', 'may not mint tokens'],
])('TokenRequest %i (%s) is a %s failure', async (code, body, kind, message) => {
  const cache = new TokenCache(fakeCore({ code, body }).api, 600, createMetrics());
  await expect(cache.tokensFor('ns', 'ghost', ['a'])).rejects.toMatchObject({
    kind,
    message: expect.stringContaining(message),
  });
});

test("a token refused by the cluster's admission policy is told as the cluster's configuration, not the SecretSync's", async () => {
  const body = JSON.stringify({
    message:
      "serviceaccounts \"fresh\" is forbidden: ValidatingAdmissionPolicy 'secret-store-sync-token-requests' with binding 'secret-store-sync-token-requests' denied request: secret-store-sync: ServiceAccount fresh has not opted in: the namespace owner must list it in the namespace annotation secret-store-sync.x-k8s.io/token-service-accounts.",
  });
  const cache = new TokenCache(fakeCore({ code: 403, body }).api, 600, createMetrics());
  const err = (await cache.tokensFor('ns', 'fresh', ['a']).then(
    () => undefined,
    (e: unknown) => e,
  )) as SyncError;
  expect(failureReason(err.kind, 'create')).toBe('ControllerInternalError');
  expect(err.message).toContain("a token for ServiceAccount 'fresh' was refused by an admission policy");
  expect(err.message).toContain('ServiceAccount fresh has not opted in');
  expect(adviceFor(err)).toContain("The fix is in the cluster's configuration, not in the SecretSync");
  expect(adviceFor(err)).not.toContain('Correct the SecretSync');
  expect(err.retry).toBe('slow');
});

test("a failed TokenRequest carries the apiserver's status as a field", async () => {
  const cache = new TokenCache(fakeCore({ code: 404, body: '{"message":"not found"}' }).api, 600, createMetrics());
  await expect(cache.tokensFor('ns', 'ghost', ['a'])).rejects.toMatchObject({ upstream: { code: 404 } });
});
