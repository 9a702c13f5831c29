// The `objects` parameter: YAML with `array:`, a list of YAML documents, one per Key Vault object.
// Scalars are read as their literal text (the failsafe schema), so `filePermission: 0755` stays
// "0755" and numbers are checked here, not guessed by the YAML parser.
import { ProviderError } from '@secret-store-sync/proto';
import { parse, YAMLParseError } from 'yaml';

export type ObjectType = 'secret' | 'key' | 'cert';
export type ObjectEncoding = 'utf-8' | 'hex' | 'base64';
export type ObjectFormat = 'pem' | 'pfx';

export interface KeyVaultObject {
  name: string;
  type: ObjectType;
  /** "" = the current version. */
  version: string;
  /** 0 = single version; N >= 1 = the newest N versions as <file>/0 … <file>/N-1. */
  versionHistory: number;
  /** The file name: objectAlias, else objectName. */
  fileName: string;
  encoding: ObjectEncoding;
  format: ObjectFormat;
  /** Parsed filePermission, or undefined for the request's default. */
  mode?: number;
  /** filePermission as written, for messages. */
  modeText?: string;
}

export const MAX_VERSION_HISTORY = 100;
const FIELDS = ['objectName', 'objectType', 'objectVersion', 'objectVersionHistory', 'objectAlias', 'objectEncoding', 'objectFormat', 'filePermission'] as const;
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-zA-Z]{1,64}$/;

function invalid(message: string): ProviderError {
  return new ProviderError('InvalidArgument', message);
}

function yamlError(e: unknown): string {
  return e instanceof YAMLParseError ? e.message.split('\n')[0]! : String((e as Error).message ?? e);
}

/** Far above any real class (256 objects of a few lines each); parsing more would stall every tenant's Mounts. */
const MAX_OBJECTS_TEXT = 256 * 1024;

/**
 * Key Vault reads an object costs at most: one, or a version listing, a read of the current
 * version and one read per kept version (the current one among them costs nothing more).
 */
export function readsOf(o: KeyVaultObject): number {
  return o.versionHistory > 1 ? 2 + o.versionHistory : 1;
}

export function parseObjects(text: string, maxObjects = Infinity): KeyVaultObject[] {
  if (!text.trim()) throw invalid('objects is not set: list the Key Vault objects under `array:`');
  if (text.length > MAX_OBJECTS_TEXT) throw invalid(`objects is ${text.length} characters long, over the ${MAX_OBJECTS_TEXT} this provider parses; split the objects over several SecretProviderClasses`);
  let doc: unknown;
  try {
    doc = parse(text, { schema: 'failsafe', uniqueKeys: true });
  } catch (e) {
    throw invalid(`objects is not valid YAML: ${yamlError(e)}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !('array' in doc)) {
    throw invalid('objects must be a YAML mapping with an `array:` list of object descriptions (see the SecretProviderClass example)');
  }
  const list = (doc as { array: unknown }).array;
  if (!Array.isArray(list)) throw invalid('objects: `array:` must be a list of YAML strings, one per object (write each as `- |`)');
  if (list.length === 0) throw invalid('objects: `array:` lists no objects');
  if (list.length > maxObjects) throw invalid(`objects: \`array:\` lists ${list.length} objects, over this provider's limit of ${maxObjects} per Mount; split them over several SecretProviderClasses`);
  const objects = list.map((entry, i) => parseOne(entry, i));
  const files = new Map<string, number>();
  objects.forEach((o, i) => {
    const prev = files.get(o.fileName);
    if (prev !== undefined) throw invalid(`objects[${i}] (${o.name}) writes the file '${o.fileName}', as objects[${prev}] does: give one of them an objectAlias`);
    files.set(o.fileName, i);
  });
  return objects;
}

function parseOne(entry: unknown, i: number): KeyVaultObject {
  const where = `objects[${i}]`;
  let raw: unknown = entry;
  if (typeof entry === 'string') {
    try {
      raw = parse(entry, { schema: 'failsafe', uniqueKeys: true });
    } catch (e) {
      throw invalid(`${where} is not valid YAML: ${yamlError(e)}`);
    }
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`${where} must be a mapping with objectName and objectType`);
  const fields = raw as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) {
    if (!(FIELDS as readonly string[]).includes(k)) {
      const near = FIELDS.find((f) => f.toLowerCase() === k.toLowerCase());
      throw invalid(`${where}: unknown field '${k}'${near ? ` (did you mean '${near}'?)` : `; known fields: ${FIELDS.join(', ')}`}`);
    }
    if (typeof v !== 'string') throw invalid(`${where}: ${k} must be a single value, not a ${Array.isArray(v) ? 'list' : 'mapping'}`);
  }
  const get = (k: (typeof FIELDS)[number]) => String(fields[k] ?? '').trim();

  const name = get('objectName');
  if (!name) throw invalid(`${where}: objectName is required`);
  if (!NAME.test(name)) throw invalid(`${where}: objectName '${name}' is not a Key Vault object name (1-127 letters, digits and hyphens)`);
  const w = `${where} (${name})`;

  const typeText = get('objectType');
  if (typeText !== 'secret' && typeText !== 'key' && typeText !== 'cert') {
    throw invalid(`${w}: objectType '${typeText}' is not one of secret, key, cert${typeText ? '' : ' (it is required)'}`);
  }
  const type: ObjectType = typeText;

  let version = get('objectVersion');
  if (version.toLowerCase() === 'latest') version = '';
  if (version && !VERSION.test(version)) throw invalid(`${w}: objectVersion '${version}' is not a Key Vault version id`);

  const historyText = get('objectVersionHistory');
  let versionHistory = 0;
  if (historyText) {
    if (!/^\d+$/.test(historyText)) throw invalid(`${w}: objectVersionHistory must be a whole number from 1 to ${MAX_VERSION_HISTORY}, got '${historyText}'`);
    versionHistory = Number(historyText);
    if (versionHistory < 1 || versionHistory > MAX_VERSION_HISTORY) throw invalid(`${w}: objectVersionHistory must be from 1 to ${MAX_VERSION_HISTORY}, got ${historyText}`);
    if (versionHistory === 1) versionHistory = 0;
  }

  const fileName = get('objectAlias') || name;
  if (fileName.startsWith('/') || /^[a-zA-Z]:/.test(fileName)) throw invalid(`${w}: objectAlias '${fileName}' must be a relative path`);
  if (fileName.includes('..')) throw invalid(`${w}: objectAlias '${fileName}' must not contain '..'`);
  if (!/^[0-9A-Za-z._\-/]+$/.test(fileName) || fileName.endsWith('/') || fileName.includes('//')) {
    throw invalid(`${w}: objectAlias '${fileName}' may hold letters, digits, '.', '_', '-' and single '/' between names`);
  }

  const encText = get('objectEncoding').toLowerCase();
  if (encText && encText !== 'utf-8' && encText !== 'hex' && encText !== 'base64') throw invalid(`${w}: objectEncoding '${get('objectEncoding')}' is not one of utf-8, hex, base64`);
  if (encText && encText !== 'utf-8' && type !== 'secret') throw invalid(`${w}: objectEncoding applies to objectType secret only`);

  const fmtText = get('objectFormat').toLowerCase();
  if (fmtText && fmtText !== 'pem' && fmtText !== 'pfx') throw invalid(`${w}: objectFormat '${get('objectFormat')}' is not one of pem, pfx`);
  if (fmtText === 'pfx' && type !== 'secret') throw invalid(`${w}: objectFormat pfx applies to objectType secret (the certificate's backing secret) only`);

  const modeText = get('filePermission');
  let mode: number | undefined;
  if (modeText) {
    if (!/^0?[0-7]{3}$/.test(modeText)) throw invalid(`${w}: filePermission '${modeText}' must be an octal file mode such as 0644`);
    mode = parseInt(modeText, 8);
  }

  return {
    name,
    type,
    version,
    versionHistory,
    fileName,
    encoding: (encText || 'utf-8') as ObjectEncoding,
    format: (fmtText || 'pem') as ObjectFormat,
    ...(mode !== undefined ? { mode, modeText } : {}),
  };
}
