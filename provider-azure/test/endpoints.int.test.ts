// The provider's HTTP listeners (issue 24, item 7): /healthz answers from a self-check kept once
// per interval — before, every request opened a gRPC connection to the provider's own socket, and
// about 1 000 requests a second took the container's whole CPU limit — and each listener binds
// where its flag says, so health can stay on loopback while metrics face Prometheus.
import { unlinkSync } from 'node:fs';
import { AzureStack } from '../../test/env/azure/client.js';
import { loadStackInfo } from '../../test/env/stack.js';
import { getOnce, onHost } from '../../test/helpers/http.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { objectsYaml } from '../../test/helpers/fixtures.js';
import { mountRequest, startProvider, type RunningProviderProcess } from '../../test/helpers/provider.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const k = kube();
const vault = `ep-${Date.now().toString(36)}`;
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: RunningProviderProcess;
let clientId: string;

/** The provider's metrics, read where --metrics-bind-address put them (127.0.0.2, not the helper's 127.0.0.1). */
const metricsAt2 = () => getOnce(onHost(provider.metricsUrl, '127.0.0.2'));
const selfChecks = async () =>
  (await metricsAt2()).body.split('\n').filter((l) => l.startsWith('healthz_self_checks_total'));

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'endpoints');
  await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'workload' } } });
  await azure.createVault(vault);
  clientId = (await azure.createIdentity(`endpoints-${ns.name}`)).clientId;
  await azure.addFederatedCredential(clientId, {
    name: 'fic',
    issuer: info.k8s.issuer,
    subject: `system:serviceaccount:${ns.name}:workload`,
  });
  await azure.assignRole('Key Vault Secrets User', clientId, vault);
  await azure.setSecret(vault, 'app', 'value');
  // An hour between self-checks: any check during the test would be one a request caused.
  provider = await startProvider({
    args: [
      '--healthz-check-interval-seconds=3600',
      '--healthz-bind-address=127.0.0.1',
      '--metrics-bind-address=127.0.0.2',
    ],
  });
});

afterAll(async () => {
  await provider?.stop();
  await ns?.dispose();
});

test('2 000 /healthz requests, a connection each, cause no self-check and get the same 200 ok; a Mount among them completes', async () => {
  expect(await selfChecks()).toEqual(['healthz_self_checks_total{result="ok"} 1']);
  const tr = await k.core.createNamespacedServiceAccountToken({
    name: 'workload',
    namespace: ns.name,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
  });
  const parameters = {
    keyvaultName: vault,
    tenantID: azure.tenantId,
    clientID: clientId,
    objects: objectsYaml([{ objectName: 'app', objectType: 'secret' }]),
  };
  const answers = new Map<string, number>();
  const lanes = Array.from({ length: 40 }, async () => {
    for (let i = 0; i < 50; i++) {
      const r = await getOnce(provider.healthzUrl);
      answers.set(`${r.status} ${r.body}`, (answers.get(`${r.status} ${r.body}`) ?? 0) + 1);
    }
  });
  const mounted = provider.client.mount(
    mountRequest({ parameters, token: tr.status!.token, namespace: ns.name, serviceAccount: 'workload' }),
  );
  await Promise.all(lanes);
  expect(Object.fromEntries(answers)).toEqual({ '200 ok': 2000 });
  expect((await mounted).files.map((f) => f.contents.toString())).toEqual(['value']);
  // Still the one check made at start: no request reached the gRPC socket.
  expect(await selfChecks()).toEqual(['healthz_self_checks_total{result="ok"} 1']);
});

test('each listener binds where its flag says: /metrics on 127.0.0.2 only, /healthz on 127.0.0.1 only', async () => {
  expect((await metricsAt2()).body).toContain('grpc_requests_total{method="Mount",code="OK"} 1');
  await expect(getOnce(provider.metricsUrl)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  expect(await getOnce(provider.healthzUrl)).toEqual({ status: 200, body: 'ok' });
  await expect(getOnce(onHost(provider.healthzUrl, '127.0.0.2'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});

test('/healthz still fails when the socket is gone: the next self-check finds it missing', async () => {
  const p = await startProvider({ args: ['--healthz-check-interval-seconds=1'] });
  try {
    expect(await getOnce(p.healthzUrl)).toEqual({ status: 200, body: 'ok' });
    unlinkSync(p.endpoint.slice('unix://'.length));
    const failed = await eventually(
      async () => {
        const r = await getOnce(p.healthzUrl);
        return r.status === 503 ? r : undefined;
      },
      30_000,
      '/healthz to fail',
    );
    expect(failed.body).toMatch(/UNAVAILABLE|No connection/i);
    expect(await p.metrics()).toMatch(/^healthz_self_checks_total\{result="failed"\} [1-9]/m);
  } finally {
    await p.stop();
  }
});
