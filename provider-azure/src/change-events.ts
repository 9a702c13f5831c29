// Key Vault's Event Grid events as an Event Grid subscription writes them to a storage queue, read
// as untrusted input: anyone who may send to the queue (or another subscription on it) can put
// anything there, so every message is bounded, checked field by field, and at worst dropped.
//
// Sources, each for the code next to which it is cited:
// - The events: learn.microsoft.com/azure/event-grid/event-schema-key-vault (event types; data
//   `Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP`; topic the vault's resource id,
//   subject the object name).
// - The envelope: learn.microsoft.com/azure/event-grid/event-schema (Event Grid schema: id, topic,
//   subject, eventType, eventTime, data, dataVersion, metadataVersion) and
//   learn.microsoft.com/azure/event-grid/cloud-event-schema (CloudEvents 1.0: id, source, subject,
//   type, time, data), the subscription's `eventDeliverySchema`.
// - The queue message: learn.microsoft.com/azure/event-grid/handler-storage-queues (one event per
//   message). Its body is the event's JSON in Base64 since late 2022 (MicrosoftDocs/azure-docs#102923
//   corrected the quickstart learn.microsoft.com/azure/event-grid/custom-event-to-queue-storage,
//   which said plain text); both are accepted.
// - Consuming: learn.microsoft.com/azure/key-vault/general/event-grid-overview ("check the topic…
//   check that the eventType is one you're prepared to process… ignore fields you don't understand").

/** A queue message holds at most 64 KiB (learn.microsoft.com/rest/api/storageservices/put-message). */
export const MAX_MESSAGE_CHARS = 64 * 1024;

export type ChangeKind = 'NewVersion' | 'NearExpiry' | 'Expired';
export type KeyVaultObjectType = 'Secret' | 'Key' | 'Certificate';

/** One Key Vault event, checked. Holds names and a version, never a value. */
export interface KeyVaultEvent {
  /** Event Grid's id: the same for every delivery of one event (duplicates). */
  eventId: string;
  kind: ChangeKind;
  objectType: KeyVaultObjectType;
  /** The vault's host as `data.Id` names it, lowercase: `<vault>.vault.azure.net`. */
  vaultHost: string;
  objectName: string;
  version: string;
}

/** Why a message is not acted on; the metric's `result` label. */
export type Rejection =
  /** Not an event of a Key Vault (another source on the same queue, a stray message). */
  | 'not_keyvault'
  /** A Key Vault event of a type that names no object version (VaultAccessPolicyChanged) or is unknown. */
  | 'ignored'
  /** Not Base64 or JSON, too large, or an event whose fields do not hold together. */
  | 'malformed';

export type Parsed = { events: KeyVaultEvent[] } | { rejected: Rejection };

const TYPE = /^Microsoft\.KeyVault\.(Secret|Key|Certificate)(NewVersionCreated|NearExpiry|Expired)$/;
const KINDS: Record<string, ChangeKind> = {
  NewVersionCreated: 'NewVersion',
  NearExpiry: 'NearExpiry',
  Expired: 'Expired',
};
/** The vault's ARM resource id: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>. */
const TOPIC = /\/providers\/Microsoft\.KeyVault\/vaults\/([a-z0-9-]{3,24})$/i;
const OBJECT_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-zA-Z]{1,64}$/;
const EVENT_ID = /^[\x21-\x7e]{1,128}$/;
const PATH_OF: Record<KeyVaultObjectType, string> = { Secret: 'secrets', Key: 'keys', Certificate: 'certificates' };
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** One message holds one event; an array (the webhook's shape) is accepted but bounded. */
const MAX_EVENTS_PER_MESSAGE = 32;

/** A queue message's text: the events it holds, or why it holds none to act on. */
export function parseQueueMessage(text: string): Parsed {
  if (text.length > MAX_MESSAGE_CHARS) return { rejected: 'malformed' };
  const json = messageJson(text.trim());
  if (json === undefined) return { rejected: 'malformed' };
  const items = Array.isArray(json) ? json : [json];
  if (items.length === 0 || items.length > MAX_EVENTS_PER_MESSAGE) return { rejected: 'malformed' };
  const results = items.map(parseEvent);
  const events = results.flatMap((r) => ('event' in r ? [r.event] : []));
  if (events.length > 0) return { events };
  // Every item was rejected: the message counts as the first item's reason.
  return { rejected: (results[0] as { rejected: Rejection }).rejected };
}

/** The JSON a message holds: Base64 of JSON (Event Grid's encoding), or JSON as is. */
function messageJson(text: string): unknown {
  let body = text;
  if (!body.startsWith('{') && !body.startsWith('[')) {
    if (body.length % 4 !== 0 || !BASE64.test(body)) return undefined;
    body = Buffer.from(body, 'base64').toString('utf8').trim();
    if (!body.startsWith('{') && !body.startsWith('[')) return undefined;
  }
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/**
 * A data field by its documented PascalCase name, or camelCase: one real delivery of 2021 came
 * camelCase (MicrosoftDocs/azure-docs#78126), and the SDKs' models spell it so.
 */
const field = (data: Fields, name: string): unknown =>
  data[name] ?? data[name.length <= 3 ? name.toLowerCase() : name[0]!.toLowerCase() + name.slice(1)];

function parseEvent(item: unknown): { event: KeyVaultEvent } | { rejected: Rejection } {
  if (!isObject(item)) return { rejected: 'malformed' };
  // Event Grid schema, or CloudEvents 1.0 (type, source).
  const eventType = str(item.eventType) ?? str(item.type);
  const topic = str(item.topic) ?? str(item.source);
  if (eventType === undefined || !eventType.startsWith('Microsoft.KeyVault.')) return { rejected: 'not_keyvault' };
  const vault = topic === undefined ? undefined : TOPIC.exec(topic)?.[1];
  if (!vault) return { rejected: 'not_keyvault' };
  const type = TYPE.exec(eventType);
  if (!type) return { rejected: 'ignored' };
  const eventId = str(item.id);
  if (!eventId || !EVENT_ID.test(eventId) || !isObject(item.data)) return { rejected: 'malformed' };
  const objectType = type[1] as KeyVaultObjectType;
  const object = objectOf(item.data, objectType, vault);
  if (!object) return { rejected: 'malformed' };
  return { event: { eventId, kind: KINDS[type[2]!]!, objectType, ...object } };
}

/**
 * The object the data names, when its fields agree: `Id` is
 * https://<vault host>/<secrets|keys|certificates>/<name>/<version>, its vault and name those of
 * VaultName, ObjectName and the topic. NBF and EXP are not read (information; their type varies).
 */
function objectOf(
  data: Fields,
  objectType: KeyVaultObjectType,
  topicVault: string,
): Pick<KeyVaultEvent, 'vaultHost' | 'objectName' | 'version'> | undefined {
  const id = str(field(data, 'Id'));
  const vaultName = str(field(data, 'VaultName'));
  const objectName = str(field(data, 'ObjectName'));
  const version = str(field(data, 'Version'));
  const dataType = str(field(data, 'ObjectType'));
  if (!id || id.length > 512 || !vaultName || !objectName || !OBJECT_NAME.test(objectName)) return undefined;
  if (version !== undefined && version !== '' && !VERSION.test(version)) return undefined;
  if (dataType !== undefined && dataType.toLowerCase() !== objectType.toLowerCase()) return undefined;
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return undefined;
  }
  const host = url.host.toLowerCase();
  const [collection, name, idVersion] = url.pathname.split('/').slice(1);
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (url.protocol !== 'https:' || !host.startsWith(`${vaultName.toLowerCase()}.`)) return undefined;
  if (!same(vaultName, topicVault) || collection !== PATH_OF[objectType] || !name || !same(name, objectName))
    return undefined;
  return { vaultHost: host, objectName, version: version || idVersion || '' };
}
