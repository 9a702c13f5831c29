// The manager's status types are read in one place (src/reasons.ts, with the advice appended to
// each failure) and in README's "Reference: status types" table: the two list the same reasons.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REASONS } from '../src/reasons.js';

const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');

test("README's status types table lists every reason the manager writes, and no other", () => {
  const section = readme.split(/^## Reference: status types$/m)[1]?.split(/^## /m)[0] ?? '';
  const listed = [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);
  expect(listed.sort()).toEqual(Object.keys(REASONS).sort());
});
