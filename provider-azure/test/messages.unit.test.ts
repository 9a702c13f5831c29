// Every text the provider answers a Mount with comes from its catalog (src/messages.ts). A
// ProviderError is the kit's and takes any string, so the compiler alone cannot keep texts there:
// this test finds a ProviderError made outside the catalog, and casts to the catalog's types.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContentError } from '../src/content.js';
import { AZURE, MOUNT, providerError } from '../src/messages.js';
import { REASONS } from '../src/reasons.js';

const src = join(dirname(fileURLToPath(import.meta.url)), '../src');
const sources = readdirSync(src)
  .filter((f) => f.endsWith('.ts') && f !== 'messages.ts')
  .map((f) => ({ file: f, text: readFileSync(join(src, f), 'utf8') }));

test('no source file but the catalog makes a ProviderError', () => {
  const made = sources.flatMap(({ file, text }) =>
    [...text.matchAll(/new\s+ProviderError\s*\(|extends\s+ProviderError\b/g)].map((m) => `${file}: ${m[0]}`),
  );
  // ContentError is one, whose constructor takes only a catalog Text.
  expect(made).toEqual(['content.ts: extends ProviderError']);
});

test('no source file but the catalog makes a Text or Failure by a cast', () => {
  const casts = sources.flatMap(({ file, text }) =>
    [...text.matchAll(/\bas\s+(?:unknown\s+as\s+)?(?:Text|Failure)\b|<(?:Text|Failure)>/g)].map(
      (m) => `${file}: ${m[0]}`,
    ),
  );
  expect(casts).toEqual([]);
});

test('ContentError takes no free text, and a failure keeps its code and reason (checked by the compiler)', () => {
  const make = () => {
    // @ts-expect-error: a free string is not a catalog entry
    new ContentError('a message written here');
  };
  expect(typeof make).toBe('function');
  const e = providerError(MOUNT.noEnabledVersions({ vault: 'kv', object: "secret 's'" }));
  expect(e).toMatchObject({
    code: 'NotFound',
    reason: 'NotFound',
    message: "vault 'kv': secret 's' has no enabled versions",
  });
  expect(REASONS[e.reason as 'NotFound'].code).toBe(e.code);
  expect(providerError(AZURE.vaultTimeout({ seconds: 20 })).code).toBe(REASONS.VaultTimeout.code);
});
