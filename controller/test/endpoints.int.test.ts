// The manager's HTTP listeners (issue 24, item 7): health and metrics each bind where their own
// flag says, so the chart can keep /healthz and /readyz on the node's loopback (host network)
// while /metrics listens where Prometheus reaches it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getOnce, onHost } from '../../test/helpers/http.js';
import { kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';

const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let manager: RunningManager;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'endpoints');
  // The helper binds both at 127.0.0.1 (--http-bind-address) and waits for /readyz there.
  manager = await startManager({
    namespace: ns.name,
    providerDir: mkdtempSync(join(tmpdir(), 'sss-none-')),
    args: ['--metrics-bind-address=127.0.0.2'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await ns?.dispose();
});

test('/metrics on 127.0.0.2 only; /healthz and /readyz on 127.0.0.1 only, answering the same bytes each time', async () => {
  const metrics = await getOnce(onHost(manager.metricsUrl, '127.0.0.2'));
  expect(metrics.status).toBe(200);
  expect(metrics.body).toContain('secretsync_leader 1');
  await expect(getOnce(manager.metricsUrl)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  for (const url of [manager.healthUrl, manager.readyUrl]) {
    const answers = await Promise.all(Array.from({ length: 50 }, () => getOnce(url)));
    expect(new Set(answers.map((a) => `${a.status} ${a.body}`))).toEqual(new Set(['200 ok']));
    await expect(getOnce(onHost(url, '127.0.0.2'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  }
});
