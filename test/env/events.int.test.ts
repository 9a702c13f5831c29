// The stack's event delivery is what the provider will meet in Azure: Key Vault's documented events
// arrive in an Azurite queue as Event Grid writes them, each delivery fault happens on demand, and
// reading the queue takes an Entra token of an identity with a queue data role and nothing else.
import { ClientAssertionCredential, ClientSecretCredential } from '@azure/identity';
import { QueueClient, type RestError } from '@azure/storage-queue';
import { X509Certificate } from 'node:crypto';
import { AzureStack, KEYVAULT_SCOPE_PREFIX } from './azure/client.js';
import type { EventGridEvent } from './azure/eventgrid.js';
import { createCa } from './pki.js';
import { waitUntil } from './processes.js';
import { loadStackInfo } from './stack.js';
import { kube, tempNamespace } from '../helpers/kube.js';

const info = loadStackInfo();
const azure = new AzureStack(info);
const run = Date.now().toString(36);
const vault = `ev-${run}`;
let queues = 0;

/** A fresh queue subscribed to the test vault's events; returns its name and the subscription's. */
async function subscribedQueue(opts: { includedEventTypes?: string[] } = {}) {
  const queue = `ev-${run}-${++queues}`;
  await azure.createQueue(queue);
  const subscription = await azure.subscribeVaultEvents({ vault, queue, ...opts });
  return { queue, subscription };
}

/** Receives and deletes messages until `count` have arrived; their texts in arrival order. */
async function take(queue: string, count: number): Promise<string[]> {
  const q = azure.queueAdmin(queue);
  const texts: string[] = [];
  await waitUntil(
    `${count} messages on ${queue}`,
    async () => {
      const { receivedMessageItems } = await q.receiveMessages({ numberOfMessages: 32 });
      for (const m of receivedMessageItems) {
        texts.push(m.messageText);
        await q.deleteMessage(m.messageId, m.popReceipt);
      }
      return texts.length >= count;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  return texts;
}

const decode = (text: string) => JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as EventGridEvent;
const takeEvents = async (queue: string, count: number) => (await take(queue, count)).map(decode);

beforeAll(async () => {
  await azure.createVault(vault);
});

test('a new secret version puts the documented SecretNewVersionCreated event on the queue, Base64 JSON', async () => {
  const { queue } = await subscribedQueue();
  const before = Date.now();
  const version = await azure.setSecret(vault, 'db-password', 'one');
  const [text] = await take(queue, 1);
  // One event per message, the event's JSON in Base64 (not an array, not plain text).
  expect(text).toMatch(/^[A-Za-z0-9+/]+=*$/);
  const event = decode(text!);
  expect(event).toEqual({
    id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    topic: KEYVAULT_SCOPE_PREFIX + vault,
    subject: 'db-password',
    eventType: 'Microsoft.KeyVault.SecretNewVersionCreated',
    eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/),
    data: {
      Id: `https://${vault}.vault.azure.net/secrets/db-password/${version}`,
      VaultName: vault,
      ObjectType: 'Secret',
      ObjectName: 'db-password',
      Version: version,
      NBF: null,
      EXP: null,
    },
    dataVersion: '1',
    metadataVersion: '1',
  });
  expect(Date.parse(event.eventTime)).toBeGreaterThanOrEqual(before - 1_000);
});

test('keys and certificates have their own event types, with NBF and EXP as epoch seconds', async () => {
  const { queue } = await subscribedQueue({
    includedEventTypes: ['Microsoft.KeyVault.KeyNewVersionCreated', 'Microsoft.KeyVault.CertificateNewVersionCreated'],
  });
  const keyVersion = await azure.createKey(vault, 'signing', { kty: 'EC' });
  const [keyEvent] = await takeEvents(queue, 1);
  expect(keyEvent).toMatchObject({
    subject: 'signing',
    eventType: 'Microsoft.KeyVault.KeyNewVersionCreated',
    data: { ObjectType: 'Key', ObjectName: 'signing', Version: keyVersion, NBF: null, EXP: null },
  });

  const root = createCa('events root');
  const leaf = root.issue({ commonName: 'app.example.test', dnsNames: ['app.example.test'], usage: 'server' });
  const { version } = await azure.importCertificate(vault, 'tls', { pem: leaf.key + leaf.cert });
  const x509 = new X509Certificate(leaf.cert);
  const [certEvent] = await takeEvents(queue, 1);
  expect(certEvent).toMatchObject({
    subject: 'tls',
    eventType: 'Microsoft.KeyVault.CertificateNewVersionCreated',
    data: {
      Id: `https://${vault}.vault.azure.net/certificates/tls/${version}`,
      ObjectType: 'Certificate',
      Version: version,
      NBF: Math.floor(Date.parse(x509.validFrom) / 1000),
      EXP: Math.floor(Date.parse(x509.validTo) / 1000),
    },
  });
});

test('a disable publishes nothing; the next new version does', async () => {
  const { queue } = await subscribedQueue();
  const first = await azure.setSecret(vault, 'rotated', 'a');
  await take(queue, 1);
  await azure.disableSecretVersion(vault, 'rotated', first);
  const second = await azure.setSecret(vault, 'rotated', 'b');
  const events = await takeEvents(queue, 1);
  expect(events.map((e) => [e.eventType, e.data.Version])).toEqual([
    ['Microsoft.KeyVault.SecretNewVersionCreated', second],
  ]);
  expect(await azure.queueLength(queue)).toBe(0);
});

test('near expiry and expiry of the current version are published once each', async () => {
  const { queue } = await subscribedQueue({
    includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
  });
  const expiresOn = new Date(Date.now() + 3_000);
  const s = await azure.secrets(vault).setSecret('short-lived', 'x', { expiresOn });
  const events = await takeEvents(queue, 2);
  const exp = Math.floor(expiresOn.getTime() / 1000);
  expect(events.map((e) => [e.eventType, e.data.Version, e.data.EXP])).toEqual([
    ['Microsoft.KeyVault.SecretNearExpiry', s.properties.version, exp],
    ['Microsoft.KeyVault.SecretExpired', s.properties.version, exp],
  ]);
});

test('duplicates: each event is written N times with one id', async () => {
  const { queue, subscription } = await subscribedQueue();
  await azure.setEventDelivery(subscription, { copies: 3 });
  const version = await azure.setSecret(vault, 'dup', 'v');
  const events = await takeEvents(queue, 3);
  expect(new Set(events.map((e) => e.id)).size).toBe(1);
  expect(events.map((e) => e.data.Version)).toEqual([version, version, version]);
});

test('reordering: held events are released newest first', async () => {
  const { queue, subscription } = await subscribedQueue();
  await azure.setEventDelivery(subscription, { hold: true });
  const older = await azure.setSecret(vault, 'order', '1');
  const newer = await azure.setSecret(vault, 'order', '2');
  expect(await azure.queueLength(queue)).toBe(0);
  expect(await azure.releaseHeldEvents(subscription)).toBe(2);
  const events = await takeEvents(queue, 2);
  expect(events.map((e) => e.data.Version)).toEqual([newer, older]);
});

test('drops: the next N events never arrive', async () => {
  const { queue, subscription } = await subscribedQueue();
  await azure.setEventDelivery(subscription, { dropNext: 1 });
  await azure.setSecret(vault, 'dropped', '1');
  const kept = await azure.setSecret(vault, 'dropped', '2');
  const events = await takeEvents(queue, 1);
  expect(events.map((e) => e.data.Version)).toEqual([kept]);
  expect((await azure.stats()).eventSubscriptions[subscription]).toMatchObject({ published: 2, dropped: 1 });
});

test('delay: an event arrives no sooner than the delay after the write', async () => {
  const { queue, subscription } = await subscribedQueue();
  await azure.setEventDelivery(subscription, { delayMs: 1_500 });
  const written = Date.now();
  await azure.setSecret(vault, 'slow', 'v');
  expect(await azure.queueLength(queue)).toBe(0);
  await take(queue, 1);
  expect(Date.now() - written).toBeGreaterThanOrEqual(1_500);
});

test('a raw message and the legacy camelCase payload arrive as written', async () => {
  const { queue, subscription } = await subscribedQueue();
  await azure.injectQueueMessage(queue, 'not an event at all');
  expect(await take(queue, 1)).toEqual(['not an event at all']);
  await azure.setEventDelivery(subscription, { legacyShape: true });
  const version = await azure.setSecret(vault, 'legacy', 'v');
  const [event] = await takeEvents(queue, 1);
  expect(event!.data).toEqual({
    Id: `https://${vault}.vault.azure.net/secrets/legacy/${version}`,
    vaultName: vault,
    objectType: 'Secret',
    objectName: 'legacy',
    version,
    nbf: null,
    exp: null,
  });
});

describe('reading the queue takes an Entra token and a queue data role', () => {
  let k: ReturnType<typeof kube>;
  let ns: Awaited<ReturnType<typeof tempNamespace>>;
  let queue: string;
  let reader: QueueClient;
  let clientId: string;

  beforeAll(async () => {
    k = kube();
    ns = await tempNamespace(k.core, 'events');
    await k.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'provider' } } });
    // Workload identity, as the provider's ServiceAccount would use it; a Key Vault role does not help.
    const identity = await azure.createWorkloadIdentity({
      name: `queue-reader-${ns.name}`,
      issuer: info.k8s.issuer,
      namespace: ns.name,
      serviceAccount: 'provider',
    });
    clientId = identity.clientId;
    await azure.assignRole('Key Vault Secrets User', clientId, vault);
    const saToken = async () =>
      (
        await k.core.createNamespacedServiceAccountToken({
          name: 'provider',
          namespace: ns.name,
          body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 600 } },
        })
      ).status?.token ?? '';
    const credential = new ClientAssertionCredential(azure.tenantId, clientId, saToken, {
      authorityHost: info.azure.authorityHost,
      disableInstanceDiscovery: true,
    });
    ({ queue } = await subscribedQueue());
    reader = new QueueClient(azure.queueUrl(queue), credential, { retryOptions: { maxTries: 1 } });
  });
  afterAll(async () => {
    await ns.dispose();
  });

  test('without a queue role: 403 AuthorizationPermissionMismatch', async () => {
    await azure.setSecret(vault, 'guarded', 'v');
    const err = (await reader.receiveMessages().catch((e: unknown) => e)) as RestError;
    expect({ status: err.statusCode, code: err.code }).toEqual({
      status: 403,
      code: 'AuthorizationPermissionMismatch',
    });
    expect((await azure.stats()).queueRefusals.AuthorizationPermissionMismatch).toBeGreaterThan(0);
  });

  test('with Storage Queue Data Message Processor on the queue: receive and delete, and nothing more', async () => {
    await azure.assignQueueRole('Storage Queue Data Message Processor', clientId, { queue });
    const version = await azure.setSecret(vault, 'guarded', 'w');
    let found: EventGridEvent | undefined;
    await waitUntil(
      'the event through the reader',
      async () => {
        for (const m of (await reader.receiveMessages({ numberOfMessages: 32 })).receivedMessageItems) {
          const e = decode(m.messageText);
          if (e.data.Version === version) found = e;
          await reader.deleteMessage(m.messageId, m.popReceipt);
        }
        return found !== undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(found?.eventType).toBe('Microsoft.KeyVault.SecretNewVersionCreated');
    expect(await azure.queueLength(queue)).toBe(0);
    // Get Queue Metadata needs queues/read and Put Message messages/add/action: the role holds neither.
    const meta = (await reader.getProperties().catch((e: unknown) => e)) as RestError;
    expect(meta.statusCode).toBe(403);
    const send = (await reader.sendMessage('x').catch((e: unknown) => e)) as RestError;
    expect(send.statusCode).toBe(403);
  });

  test('a token for another resource is refused with 401 InvalidAuthenticationInfo', async () => {
    const secret = `s-${run}-queue-audience`;
    const sp = await azure.createIdentity(`vault-token-${ns.name}`, secret);
    await azure.assignQueueRole('Storage Queue Data Message Processor', sp.clientId, { queue });
    const credential = new ClientSecretCredential(azure.tenantId, sp.clientId, secret, {
      authorityHost: info.azure.authorityHost,
      disableInstanceDiscovery: true,
    });
    // A token the identity may hold, but for Key Vault: the storage SDK sends whatever it is given.
    const vaultToken = await credential.getToken('https://vault.azure.net/.default');
    const misdirected = new QueueClient(
      azure.queueUrl(queue),
      { getToken: async () => vaultToken },
      { retryOptions: { maxTries: 1 } },
    );
    const err = (await misdirected.receiveMessages().catch((e: unknown) => e)) as RestError;
    expect({ status: err.statusCode, code: err.code }).toEqual({ status: 401, code: 'InvalidAuthenticationInfo' });
    expect(err.response?.headers.get('www-authenticate')).toBe(
      `Bearer authorization_uri=${info.azure.authorityHost}/${azure.tenantId}/oauth2/authorize resource_id=https://storage.azure.com`,
    );
    expect(err.response?.bodyAsText).toContain(
      '<AuthenticationErrorDetail>Audience validation failed. Audience did not match.</AuthenticationErrorDetail>',
    );
  });
});
