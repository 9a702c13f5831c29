// The check both processes' `--help` must pass: every flag the parser accepts is listed with a
// description, none is listed that it refuses, and the README's flag table names each.
import type { FlagTable } from '@secret-store-sync/proto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';

export function expectHelpDescribesEveryFlag(o: {
  flags: FlagTable;
  usage: string;
  /** Parses one command line; throws on a flag it does not accept. */
  parse: (argv: string[]) => unknown;
  /** The README section whose table lists the flags. */
  readmeSection: string;
}): void {
  for (const [name, flag] of Object.entries(o.flags)) {
    expect(() =>
      o.parse([flag.type === 'boolean' ? `--${name}` : `--${name}=${String(flag.default ?? '')}`]),
    ).not.toThrow();
    // The flag's line, then its description: indented, a few words at least.
    expect(o.usage).toMatch(new RegExp(`^  --${name}( \\(default [^)\\n]*\\))?\\n {6}\\S[^\\n]{15,}`, 'm'));
  }
  expect([...o.usage.matchAll(/^ {2}--([\w-]+)/gm)].map((m) => m[1])).toEqual(Object.keys(o.flags));
  expect(() => o.parse(['--no-such-flag'])).toThrow(/no-such-flag/);

  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf(o.readmeSection);
  expect(start).toBeGreaterThan(0);
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const inTable = (name: string) => section.split('\n').some((l) => l.startsWith('| ') && l.includes(`\`--${name}\``));
  expect(Object.keys(o.flags).filter((n) => n !== 'help' && n !== 'version' && !inTable(n))).toEqual([]);
}
