// A write in flight across a lease loss: the fence is checked when a write is sent, and the write's
// deadline ends where this manager stops being sure it holds the lease (last renewal sent + renew
// deadline). An apiserver that is slow to take a PATCH must see the connection dropped before a
// successor could have taken over — on the previous code the write stayed open for the whole 30 s
// call deadline and landed after the takeover.
import { CoreV1Api, KubeConfig, type CoordinationV1Api } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { KubeClients } from '../src/kube-client.js';
import { LeaderElector, timings } from '../src/leader.js';
import type { Logger } from '../src/log.js';
import { eventually } from '../../test/helpers/kube.js';

const LEASE_SECONDS = 5;
const { leaseMs, renewDeadlineMs } = timings(LEASE_SECONDS);
let offset = 0;
const now = () => performance.now() + offset;

// The Lease API: the first create (acquire) succeeds; later renewals do not get through.
let creates = 0;
const leases = {
  readNamespacedLease: async () => Promise.reject(Object.assign(new Error('not found'), { code: 404 })),
  createNamespacedLease: async () =>
    creates++ === 0 ? {} : Promise.reject(Object.assign(new Error('timeout'), { code: 504 })),
} as unknown as CoordinationV1Api;
// It abdicates once renewals stop getting through; exiting is left out, and so are its logs.
const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined } as unknown as Logger;
const elector = new LeaderElector(
  leases,
  { namespace: 'n', name: 'lease', identity: 'me', leaseDurationSeconds: LEASE_SECONDS },
  { log: quiet, onChange: () => undefined, exit: (() => undefined) as never, now },
);

/** When a successor could have taken over (monotonic, on `now`). */
let takeoverAt = Infinity;
let outcome: 'landed' | 'aborted' | undefined;
let server: Server;
let clients: KubeClients;

beforeAll(async () => {
  // A slow apiserver: it applies the PATCH only once a successor could hold the lease, if the
  // client is still connected then.
  server = createServer((req, res) => {
    req.resume();
    let closed = false;
    res.on('close', () => (closed = true));
    const poll = setInterval(() => {
      if (closed) outcome = 'aborted';
      else if (now() >= takeoverAt) {
        outcome = 'landed';
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 's', namespace: 'n', resourceVersion: '2' },
          }),
        );
      } else return;
      clearInterval(poll);
    }, 10);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  clients = new KubeClients(kc, { timeoutMs: 30_000, writeBudgetMs: () => elector.writeBudgetMs() });
});

afterAll(async () => {
  await elector.release();
  clients.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test('a write sent just before the renew deadline is aborted, not landed, before a successor could take over', async () => {
  elector.start();
  await eventually(async () => (elector.canWrite() ? true : undefined), 5_000, 'the elector to lead');
  // Jump the clock to 300 ms before the renew deadline: the fence still lets a write through.
  offset += elector.writeBudgetMs() - 300;
  takeoverAt = now() + 300 + (leaseMs - renewDeadlineMs);
  expect(elector.canWrite()).toBe(true);
  const core = clients.make(CoreV1Api);
  const write = core.patchNamespacedSecret({
    name: 's',
    namespace: 'n',
    body: [{ op: 'add', path: '/data', value: {} }],
  });
  await expect(write).rejects.toBeDefined();
  await eventually(async () => outcome, 10_000, 'the apiserver to see the write end');
  expect(outcome).toBe('aborted');
});
