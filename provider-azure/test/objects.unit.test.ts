// The `objects` YAML is a tenant's text parsed on the provider's one thread, which serves every
// namespace: its cost must be bounded by the shape a class needs, not only by bytes. Each hostile
// shape below is at the 64 KiB the default 256 objects allow. Measured with yaml 2.9.1 on a 2-core
// machine, warm, before the shape check (ms): commas after `[` 430 (and 148 s for one Mount of
// 262 000 commas under the old 256 KiB limit), a multi-line quoted scalar 570, 8 000 keys in one
// mapping 510, 32 000 comment lines 89, 16 000 `---` 94. After it: each refused in under 10 ms;
// the slowest text accepted by the shape check (2 049 keys in one mapping) 49 ms, next to 33 ms
// for a real class of 256 objects.
import { ProviderError } from '@secret-store-sync/proto';
import { OBJECTS_TEXT_BYTES_PER_OBJECT, parseObjects } from '../src/objects.js';

const MAX_OBJECTS = 256;
const N = OBJECTS_TEXT_BYTES_PER_OBJECT * MAX_OBJECTS;
const entry = (i: number) =>
  `  - |\n    objectName: secret-number-${i}\n    objectType: secret\n    objectAlias: alias-${i}\n`;
const realClass = 'array:\n' + Array.from({ length: MAX_OBJECTS }, (_, i) => entry(i)).join('');

function refusal(text: string): string {
  try {
    parseObjects(text, MAX_OBJECTS);
  } catch (e) {
    expect(e).toBeInstanceOf(ProviderError);
    expect((e as ProviderError).code).toBe('InvalidArgument');
    return (e as ProviderError).message;
  }
  throw new Error('parsed');
}

test('a real class of 256 objects fits and parses', () => {
  expect(realClass.length).toBeLessThan(N);
  expect(parseObjects(realClass, MAX_OBJECTS)).toHaveLength(MAX_OBJECTS);
});

test.each([
  [
    "commas in a flow list (the issue's 262 000)",
    'array: [' + ','.repeat(N - 10),
    'objects uses YAML flow lists ([...]), which a SecretProviderClass never needs',
  ],
  ['nested flow lists', 'array: ' + '['.repeat(N - 10), 'uses YAML flow lists'],
  ['a flow mapping', 'array: {' + 'a: b, '.repeat((N - 20) / 6) + '}', 'uses YAML flow mappings'],
  ['explicit keys', 'array:\n' + '? a\n'.repeat((N - 10) / 4), 'uses YAML explicit keys (?)'],
  ['anchors', 'array:\n  - &a |\n    objectName: a\n', 'uses YAML anchors (&)'],
  ['aliases', 'x: &a y\narray:\n  - *a\n', 'uses YAML anchors (&)'],
  [
    "tags (each a warning on the provider's stderr before)",
    'array:\n  - !x |\n    objectName: a\n',
    'uses YAML tags (!)',
  ],
  ['directives', '%YAML 1.2\n---\narray:\n', 'uses YAML directives (%)'],
  [
    'one quoted scalar of 32 000 lines',
    'array: "' + 'a\n'.repeat((N - 10) / 2) + '"',
    'objects has more than 4112 lines',
  ],
  ['a quoted scalar spanning lines', 'array: "' + ' a\n'.repeat(4000) + '"', 'a quoted value spans lines'],
  ['4 000 lines of errors', 'array: "' + 'a\n'.repeat(4000) + '"', 'objects is not valid YAML'],
  [
    '8 000 keys in one mapping',
    'array:\n' +
      Array.from({ length: 8000 }, (_, i) => `k${i}: v\n`)
        .join('')
        .slice(0, N - 10),
    'has more than 2049 mapping keys',
  ],
  ['32 000 comment lines', 'array:\n' + '#\n'.repeat((N - 10) / 2), 'objects has more than 4112 lines'],
  ['16 000 documents', '---\n'.repeat((N - 10) / 4), 'holds more than one YAML document'],
  ['32 000 nested list entries', 'array:\n' + '- '.repeat((N - 10) / 2), 'objects has more than 257 list entries'],
  [
    'an entry of 9 000 comment lines',
    'array:\n  - |\n' + '    #\n'.repeat((N - 20) / 6),
    'objects[0] has more than 16 lines',
  ],
  ['an entry holding a list', 'array:\n  - |\n    objectName:\n      - a\n', 'objects[0]: a field holds a list'],
  ['more text than 256 bytes per object', 'array:\n' + ' '.repeat(N), `over the ${N} this provider parses`],
])('%s is refused from its shape', (_what, text, message) => {
  expect(refusal(text)).toContain(message);
});

test("the text limit follows the operator's object limit, with a floor", () => {
  expect(realClass.length).toBeGreaterThan(16 * 1024);
  expect(() => parseObjects(realClass, 16)).toThrow('over the 16384 this provider parses');
  expect(parseObjects(realClass, 1000)).toHaveLength(MAX_OBJECTS);
});

test("a tenant's value is quoted back bounded: messages reach status and Events", () => {
  const message = refusal(`array:\n  - |\n    objectName: ${'a'.repeat(10_000)}\n    objectType: secret\n`);
  expect(message).toMatch(/objectName 'a{64}…' is not a Key Vault object name/);
  expect(message.length).toBeLessThan(300);
});
