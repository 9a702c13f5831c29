// Queue messages as an Event Grid subscription writes them (change-events.ts): each documented Key
// Vault event type becomes an event naming its object, whatever the encoding Event Grid used, and
// anything else — another source's events, stray text, oversize or inconsistent messages — is
// rejected with a reason, never thrown.
import { MAX_MESSAGE_CHARS, parseQueueMessage } from '../src/change-events.js';
import { changeKey, vaultHost } from '../src/change-keys.js';

const TOPIC =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/my-kv';
const COLLECTION = { Secret: 'secrets', Key: 'keys', Certificate: 'certificates' } as const;

/** An event in the Event Grid schema, shaped as learn.microsoft.com/azure/event-grid/event-schema-key-vault shows it. */
function event(type: keyof typeof COLLECTION, what: string, o: { name?: string; id?: string; data?: object } = {}) {
  const name = o.name ?? 'db-password';
  return {
    id: o.id ?? 'b1e0b2a4-35d6-4c3a-9d8f-1a2b3c4d5e6f',
    topic: TOPIC,
    subject: name,
    eventType: `Microsoft.KeyVault.${type}${what}`,
    eventTime: '2026-12-05T10:00:00.0000000Z',
    data: {
      Id: `https://my-kv.vault.azure.net/${COLLECTION[type]}/${name}/0123456789abcdef0123456789abcdef`,
      VaultName: 'my-kv',
      ObjectType: type,
      ObjectName: name,
      Version: '0123456789abcdef0123456789abcdef',
      NBF: null,
      EXP: 1893456000,
      ...o.data,
    },
    dataVersion: '1',
    metadataVersion: '1',
  };
}
const base64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');

describe.each(['Secret', 'Key', 'Certificate'] as const)('%s events', (type) => {
  test.each([
    ['NewVersionCreated', 'NewVersion'],
    ['NearExpiry', 'NearExpiry'],
    ['Expired', 'Expired'],
  ])('%s, Base64 as Event Grid writes it, names the object and its version', (what, kind) => {
    expect(parseQueueMessage(base64(event(type, what)))).toEqual({
      events: [
        {
          eventId: 'b1e0b2a4-35d6-4c3a-9d8f-1a2b3c4d5e6f',
          kind,
          objectType: type,
          vaultHost: 'my-kv.vault.azure.net',
          objectName: 'db-password',
          version: '0123456789abcdef0123456789abcdef',
        },
      ],
    });
  });
});

test('plain JSON (the older encoding), an array, CloudEvents and the camelCase payload are read alike', () => {
  const e = event('Secret', 'NewVersionCreated');
  const expected = parseQueueMessage(base64(e));
  expect(expected).toHaveProperty('events');
  expect(parseQueueMessage(JSON.stringify(e))).toEqual(expected);
  expect(parseQueueMessage(`  ${JSON.stringify([e])}\n`)).toEqual(expected);
  const cloudEvent = {
    id: e.id,
    source: TOPIC,
    subject: e.subject,
    type: e.eventType,
    specversion: '1.0',
    data: e.data,
  };
  expect(parseQueueMessage(base64(cloudEvent))).toEqual(expected);
  // One real delivery of 2021 came camelCase with strings (MicrosoftDocs/azure-docs#78126).
  const camel = Object.fromEntries(
    Object.entries(e.data).map(([k, v]) => [
      k.length <= 3 ? k.toLowerCase() : k[0]!.toLowerCase() + k.slice(1),
      v === null ? null : String(v),
    ]),
  );
  expect(parseQueueMessage(base64({ ...e, data: camel }))).toEqual(expected);
});

test("another source's events, Key Vault events that name no object version, and stray text are told apart", () => {
  const storage = { ...event('Secret', 'NewVersionCreated'), eventType: 'Microsoft.Storage.BlobCreated' };
  expect(parseQueueMessage(base64(storage))).toEqual({ rejected: 'not_keyvault' });
  // A Key Vault event type from a topic that is not a vault: someone else's custom topic.
  const custom = {
    ...event('Secret', 'NewVersionCreated'),
    topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/topics/t',
  };
  expect(parseQueueMessage(base64(custom))).toEqual({ rejected: 'not_keyvault' });
  const policy = { ...event('Secret', 'NewVersionCreated'), eventType: 'Microsoft.KeyVault.VaultAccessPolicyChanged' };
  expect(parseQueueMessage(base64(policy))).toEqual({ rejected: 'ignored' });
  expect(parseQueueMessage('hello')).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage('')).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage(Buffer.from('not json at all').toString('base64'))).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage('{"id": ')).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage('42')).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage('[]')).toEqual({ rejected: 'malformed' });
});

test('a message over 64 KiB is refused before it is decoded', () => {
  const e = event('Secret', 'NewVersionCreated', { data: { padding: 'x'.repeat(MAX_MESSAGE_CHARS) } });
  expect(parseQueueMessage(JSON.stringify(e))).toEqual({ rejected: 'malformed' });
  expect(parseQueueMessage(base64(e))).toEqual({ rejected: 'malformed' });
});

test('an event whose fields disagree is malformed: it could point a notice anywhere', () => {
  const cases: object[] = [
    event('Secret', 'NewVersionCreated', { data: { VaultName: 'other-kv' } }),
    event('Secret', 'NewVersionCreated', { data: { ObjectName: 'other' } }),
    event('Secret', 'NewVersionCreated', { data: { ObjectType: 'Key' } }),
    event('Secret', 'NewVersionCreated', { data: { Id: 'https://my-kv.vault.azure.net/keys/db-password/v1' } }),
    event('Secret', 'NewVersionCreated', { data: { Id: 'http://my-kv.vault.azure.net/secrets/db-password/v1' } }),
    event('Secret', 'NewVersionCreated', { data: { Id: 'https://evil.example/secrets/db-password/v1' } }),
    event('Secret', 'NewVersionCreated', { data: { Id: 'not a url' } }),
    event('Secret', 'NewVersionCreated', { data: { ObjectName: 'bad name!' } }),
    event('Secret', 'NewVersionCreated', { data: { Version: '../..' } }),
    event('Secret', 'NewVersionCreated', { id: '' }),
    { ...event('Secret', 'NewVersionCreated'), data: 'text' },
  ];
  for (const c of cases)
    expect({ c, parsed: parseQueueMessage(base64(c)) }).toEqual({ c, parsed: { rejected: 'malformed' } });
});

test('names are compared without case, as Key Vault does', () => {
  const e = event('Secret', 'NewVersionCreated', {
    data: {
      Id: 'https://MY-KV.vault.azure.net/secrets/DB-Password/0123456789abcdef0123456789abcdef',
      VaultName: 'My-KV',
    },
  });
  const parsed = parseQueueMessage(base64(e));
  expect(parsed).toMatchObject({ events: [{ vaultHost: 'my-kv.vault.azure.net', objectName: 'db-password' }] });
});

describe('change keys', () => {
  const kv = vaultHost('https://my-kv.vault.azure.net/');

  test("an event's object maps to the key its Mount named, whatever the case and object type", () => {
    const parsed = parseQueueMessage(base64(event('Certificate', 'NewVersionCreated', { name: 'Web-TLS' })));
    const e = (parsed as { events: { vaultHost: string; objectName: string }[] }).events[0]!;
    // A `secret` object backed by the certificate hears the certificate's event.
    expect(changeKey(e.vaultHost, e.objectName)).toBe(changeKey(kv, 'web-tls'));
    expect(vaultHost('https://My-KV.vault.azure.net/')).toBe(kv);
  });

  test('differ by vault and by object, and are valid change keys (1-128 printable ASCII)', () => {
    const keys = [
      changeKey(kv, 'a'),
      changeKey(kv, 'b'),
      changeKey('other-kv.vault.azure.net', 'a'),
      changeKey('my-kv.vault.azure.cn', 'a'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k).toMatch(/^[\x21-\x7e]{1,128}$/);
  });
});
