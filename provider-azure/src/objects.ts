// The `objects` parameter: YAML with `array:`, a list of YAML documents, one per Key Vault object.
// Scalars are read as their literal text (the failsafe schema), so `filePermission: 0755` stays
// "0755" and numbers are checked here, not guessed by the YAML parser.
import { errorMessage, type ProviderError } from '@secret-store-sync/proto';
import { CST, Lexer, parse, YAMLParseError } from 'yaml';
import { OBJECTS, providerError, type Failure } from './messages.js';

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
const FIELDS = [
  'objectName',
  'objectType',
  'objectVersion',
  'objectVersionHistory',
  'objectAlias',
  'objectEncoding',
  'objectFormat',
  'filePermission',
] as const;
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-zA-Z]{1,64}$/;

const invalid = (f: Failure) => providerError(f);

function yamlError(e: unknown): string {
  return e instanceof YAMLParseError ? e.message.split('\n')[0]! : errorMessage(e);
}

/**
 * Bytes of `objects` text a class may spend per object it may list: real ones spend 60-150 (five
 * fields, indented), so the default 256 objects allow 64 KiB. Parsing cost grows with the text, and
 * every tenant's Mounts wait while the provider's one thread parses.
 */
export const OBJECTS_TEXT_BYTES_PER_OBJECT = 256;
const MIN_OBJECTS_TEXT = 16 * 1024;
/** An object is its `- |` line and up to eight fields; the rest leaves room for comments. */
const LINES_PER_OBJECT = 16;

// prettyErrors would quote the source around every error: an O(n) scan per error, so text full of
// errors cost O(n²) (262 000 commas kept the event loop busy for minutes). logLevel error: errors
// throw, and a tenant's warnings never reach the provider's stderr ('silent' would drop errors too).
const YAML_OPTIONS = {
  schema: 'failsafe',
  uniqueKeys: true,
  prettyErrors: false,
  logLevel: 'error',
  maxAliasCount: 0,
} as const;

/**
 * What a class never needs is refused from the lexer's tokens, which cost linear time, before the
 * yaml library composes anything: composing flow collections, explicit keys, anchors, tags and
 * multi-line quoted scalars, or one mapping of thousands of keys (uniqueKeys compares each with all
 * before it), costs it superlinear time. Measured on 64 KiB with yaml 2.9.1 before this check (the
 * worst shapes found, objects.unit.test.ts lists them): 430 ms for `[` and commas, 570 ms for one
 * multi-line quoted scalar, 510 ms for 8 000 keys; after it, each is refused within the lexer's
 * few milliseconds and the slowest accepted shape parses in about 60 ms.
 */
function refuseCostlyShapes(text: string, where: string, limits: ShapeLimits): void {
  // The stream's start, and one `---` before the content: two document tokens at most.
  const max: Record<Counted, number> = { ...limits, documents: 2 };
  const seen: Record<Counted, number> = { documents: 0, lines: 0, keys: 0, items: 0 };
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token) ?? '';
    const counted = COUNTED.get(type);
    if (counted && ++seen[counted] > max[counted]) throw tooMany(counted, where, limits);
    if (QUOTED.has(type) && token.includes('\n')) throw invalid(OBJECTS.multilineQuote({ where }));
    const shape = SHAPE_NAMES.get(type);
    if (shape) throw invalid(OBJECTS.costlyShape({ where, shape }));
  }
}

/** What is counted, by the lexer's token type. */
type Counted = 'documents' | 'lines' | 'keys' | 'items';
const COUNTED = new Map<string, Counted>([
  ['doc-mode', 'documents'],
  ['doc-start', 'documents'],
  ['newline', 'lines'],
  ['map-value-ind', 'keys'],
  ['seq-item-ind', 'items'],
]);
const QUOTED = new Set(['single-quoted-scalar', 'double-quoted-scalar']);

function tooMany(counted: Counted, where: string, limits: ShapeLimits): ProviderError {
  switch (counted) {
    case 'documents':
      return invalid(OBJECTS.severalDocuments({ where }));
    case 'lines':
      return invalid(OBJECTS.tooManyLines({ where, limit: limits.lines }));
    case 'keys':
      return invalid(OBJECTS.tooManyKeys({ where, limit: limits.keys, perObject: FIELDS.length }));
    case 'items':
      return invalid(
        limits.items === 0 ? OBJECTS.fieldIsList({ where }) : OBJECTS.tooManyItems({ where, limit: limits.items }),
      );
  }
}

/** Shapes refused outright, by the lexer's token type. */
const SHAPE_NAMES = new Map<string, string>([
  ['flow-map-start', 'flow mappings ({...})'],
  ['flow-seq-start', 'flow lists ([...])'],
  ['explicit-key-ind', 'explicit keys (?)'],
  ['anchor', 'anchors (&)'],
  ['alias', 'aliases (*)'],
  ['tag', 'tags (!)'],
  ['directive-line', 'directives (%)'],
]);

interface ShapeLimits {
  keys: number;
  items: number;
  lines: number;
}

function parseYaml(text: string, where: string, limits: ShapeLimits): unknown {
  refuseCostlyShapes(text, where, limits);
  // The library makes an Error for every problem it finds, and a stack trace for each costs more
  // than the parsing (4 000 lines of errors: 125 ms, 33 ms without). Synchronous: nothing else
  // runs while the limit is lowered.
  const traces = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return parse(text, YAML_OPTIONS);
  } catch (e) {
    throw invalid(OBJECTS.notYaml({ where, detail: yamlError(e) }));
  } finally {
    Error.stackTraceLimit = traces;
  }
}

/**
 * Key Vault reads an object costs at most: one, or a version listing, a read of the current
 * version and one read per kept version (the current one among them costs nothing more).
 */
export function readsOf(o: KeyVaultObject): number {
  return o.versionHistory > 1 ? 2 + o.versionHistory : 1;
}

export function parseObjects(text: string, maxObjects: number): KeyVaultObject[] {
  if (!text.trim()) throw invalid(OBJECTS.notSet());
  const maxText = Math.max(MIN_OBJECTS_TEXT, OBJECTS_TEXT_BYTES_PER_OBJECT * maxObjects);
  if (text.length > maxText) {
    throw invalid(OBJECTS.tooLong({ length: text.length, limit: maxText, perObject: OBJECTS_TEXT_BYTES_PER_OBJECT }));
  }
  // `array:` and, for entries written as mappings rather than `- |` text, their fields.
  const doc = parseYaml(text, 'objects', {
    keys: 1 + FIELDS.length * maxObjects,
    items: maxObjects + 1,
    lines: LINES_PER_OBJECT * (maxObjects + 1),
  });
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !('array' in doc)) {
    throw invalid(OBJECTS.noArray());
  }
  const list = (doc as { array: unknown }).array;
  if (!Array.isArray(list)) throw invalid(OBJECTS.arrayNotList());
  if (list.length === 0) throw invalid(OBJECTS.emptyArray());
  if (list.length > maxObjects) throw invalid(OBJECTS.tooMany({ count: list.length, limit: maxObjects }));
  const objects = list.map((entry, i) => parseOne(entry, i));
  const files = new Map<string, number>();
  objects.forEach((o, i) => {
    const prev = files.get(o.fileName);
    if (prev !== undefined)
      throw invalid(OBJECTS.sameFile({ index: i, name: o.name, file: o.fileName, previous: prev }));
    files.set(o.fileName, i);
  });
  return objects;
}

type Field = (typeof FIELDS)[number];
type Get = (k: Field) => string;

/** One entry's fields: known names only, each a single value. */
function fieldsOf(entry: unknown, where: string): Get {
  const raw =
    typeof entry === 'string'
      ? parseYaml(entry, where, { keys: FIELDS.length, items: 0, lines: LINES_PER_OBJECT })
      : entry;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(OBJECTS.notMapping({ where }));
  const fields = raw as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields)) {
    if (!(FIELDS as readonly string[]).includes(k)) {
      const near = FIELDS.find((f) => f.toLowerCase() === k.toLowerCase());
      throw invalid(OBJECTS.unknownField({ where, field: k, ...(near ? { near } : {}), known: FIELDS }));
    }
    if (typeof v !== 'string') throw invalid(OBJECTS.notSingleValue({ where, field: k, isList: Array.isArray(v) }));
  }
  return (k) => String(fields[k] ?? '').trim();
}

function parseOne(entry: unknown, i: number): KeyVaultObject {
  const where = `objects[${i}]`;
  const get = fieldsOf(entry, where);
  const name = get('objectName');
  if (!name) throw invalid(OBJECTS.noName({ where }));
  if (!NAME.test(name)) throw invalid(OBJECTS.badName({ where, name }));
  const w = `${where} (${name})`;

  const typeText = get('objectType');
  if (typeText !== 'secret' && typeText !== 'key' && typeText !== 'cert') {
    throw invalid(OBJECTS.badType({ where: w, type: typeText }));
  }
  const type: ObjectType = typeText;
  // Checked in this order, so a class with several mistakes hears of the first one first.
  const version = versionOf(get, w);
  const versionHistory = versionHistoryOf(get, w);
  const fileName = fileNameOf(get('objectAlias') || name, w);
  const encoding = encodingOf(get, type, w);
  const format = formatOf(get, type, w);
  const mode = modeOf(get, w);
  return {
    name,
    type,
    version,
    versionHistory,
    fileName,
    encoding,
    format,
    ...(mode !== undefined ? { mode, modeText: get('filePermission') } : {}),
  };
}

function versionOf(get: Get, w: string): string {
  const version = get('objectVersion');
  if (version.toLowerCase() === 'latest') return '';
  if (version && !VERSION.test(version)) throw invalid(OBJECTS.badVersion({ where: w, version }));
  return version;
}

function versionHistoryOf(get: Get, w: string): number {
  const text = get('objectVersionHistory');
  if (!text) return 0;
  if (!/^\d+$/.test(text)) throw invalid(OBJECTS.historyNotNumber({ where: w, text, max: MAX_VERSION_HISTORY }));
  const n = Number(text);
  if (n < 1 || n > MAX_VERSION_HISTORY)
    throw invalid(OBJECTS.historyOutOfRange({ where: w, text, max: MAX_VERSION_HISTORY }));
  return n === 1 ? 0 : n;
}

function fileNameOf(fileName: string, w: string): string {
  if (fileName.length > 253) throw invalid(OBJECTS.aliasTooLong({ where: w, alias: fileName }));
  if (fileName.startsWith('/') || /^[a-zA-Z]:/.test(fileName))
    throw invalid(OBJECTS.aliasAbsolute({ where: w, alias: fileName }));
  if (fileName.includes('..')) throw invalid(OBJECTS.aliasDotDot({ where: w, alias: fileName }));
  if (!/^[0-9A-Za-z._\-/]+$/.test(fileName) || fileName.endsWith('/') || fileName.includes('//'))
    throw invalid(OBJECTS.aliasCharacters({ where: w, alias: fileName }));
  return fileName;
}

function encodingOf(get: Get, type: ObjectType, w: string): ObjectEncoding {
  const text = get('objectEncoding').toLowerCase();
  if (text && text !== 'utf-8' && text !== 'hex' && text !== 'base64')
    throw invalid(OBJECTS.badEncoding({ where: w, encoding: get('objectEncoding') }));
  if (text && text !== 'utf-8' && type !== 'secret') throw invalid(OBJECTS.encodingNotSecret({ where: w }));
  return (text || 'utf-8') as ObjectEncoding;
}

function formatOf(get: Get, type: ObjectType, w: string): ObjectFormat {
  const text = get('objectFormat').toLowerCase();
  if (text && text !== 'pem' && text !== 'pfx')
    throw invalid(OBJECTS.badFormat({ where: w, format: get('objectFormat') }));
  if (text === 'pfx' && type !== 'secret') throw invalid(OBJECTS.pfxNotSecret({ where: w }));
  return (text || 'pem') as ObjectFormat;
}

function modeOf(get: Get, w: string): number | undefined {
  const text = get('filePermission');
  if (!text) return undefined;
  if (!/^0?[0-7]{3}$/.test(text)) throw invalid(OBJECTS.badPermission({ where: w, text }));
  return parseInt(text, 8);
}
