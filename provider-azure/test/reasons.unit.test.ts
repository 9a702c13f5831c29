// The provider's reasons are read in one place (src/reasons.ts) and in README's provider errors
// table: the two list the same reasons, each with the same gRPC status.
import { ProviderError, statusName } from '@secret-store-sync/proto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REASONS } from '../src/reasons.js';

const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');

/** The rows `| \`reason\` | \`STATUS\` | meaning |` of the table under the provider's "### Errors". */
function readmeTable(): Map<string, string> {
  const section = readme.split(/^### Errors$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([^`]+)` \| `([A-Z_]+)` \|/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

test("README's provider errors table lists every reason of the catalog, with its status, and no other", () => {
  const table = readmeTable();
  const catalog = new Map(
    Object.entries(REASONS).map(([reason, { code }]) => [reason, statusName(new ProviderError(code, '').grpcCode)]),
  );
  expect(Object.fromEntries(table)).toEqual(Object.fromEntries(catalog));
});
