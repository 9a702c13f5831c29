// Pooled authentication: one kept-alive agent per TLS identity, kubeconfig files read again only
// after a few seconds (so a rotated certificate or token is picked up).
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PooledAuthentication } from '../src/kube-client.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'kube-client-'));
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  writeFileSync(files.ca, 'CA-ONE');
  writeFileSync(files.cert, 'CERT-ONE');
  writeFileSync(files.key, 'KEY-ONE');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caFile: files.ca }],
    users: [{ name: 'u', certFile: files.cert, keyFile: files.key }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  let t = 1_000_000;
  const auth = new PooledAuthentication(kc, 'https://127.0.0.1:6443', () => t);
  const call = async () => {
    const ctx = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
    await auth.applySecurityAuthentication(ctx);
    return ctx.getAgent() as Agent;
  };
  return { files, call, advance: (ms: number) => (t += ms), auth };
}

test('calls share one kept-alive agent carrying the kubeconfig TLS identity', async () => {
  const { call, auth } = setup();
  const [a, b] = [await call(), await call()];
  expect(a).toBe(b);
  expect(a).toBeInstanceOf(Agent);
  expect((a as unknown as { keepAlive: boolean }).keepAlive).toBe(true);
  expect(String(a.options.cert)).toBe('CERT-ONE');
  expect(String(a.options.ca)).toBe('CA-ONE');
  auth.destroy();
});

test('a rotated client certificate is used within seconds, with a new agent', async () => {
  const { files, call, advance, auth } = setup();
  const first = await call();
  writeFileSync(files.cert, 'CERT-TWO');
  advance(1_000);
  expect(await call()).toBe(first); // files are not read on every call
  advance(5_000);
  const next = await call();
  expect(next).not.toBe(first);
  expect(String(next.options.cert)).toBe('CERT-TWO');
  auth.destroy();
});
