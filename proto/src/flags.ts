// A process's command-line flags as one table: parseArgs's options and the `--help` text are both
// made from it, so a flag the parser accepts is always described, and no description outlives its flag.

/** One option of node:util parseArgs, as a table's flag makes it (never `multiple`). */
export interface ParseArgsOption {
  type: 'string' | 'boolean';
  multiple?: false;
  default?: string | boolean;
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  /** The value when the flag is absent; '' for "computed" (the help says from what). */
  default?: string | boolean;
  /** What the flag does, for `--help`: one sentence or two, without the default. */
  help: string;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** The table as node:util parseArgs options (the help texts left out). */
export function parseArgsOptions(flags: FlagTable): Record<string, ParseArgsOption> {
  return Object.fromEntries(
    Object.entries(flags).map(([name, f]) => [
      name,
      f.default === undefined ? { type: f.type } : { type: f.type, default: f.default },
    ]),
  );
}

/** `--help`: each flag on a line with its default, its description indented below it. */
export function flagUsage(usageLine: string, flags: FlagTable): string {
  const lines = [usageLine, '', 'Flags:'];
  for (const [name, f] of Object.entries(flags)) {
    const shown = f.type === 'string' && typeof f.default === 'string' && f.default !== '';
    lines.push(
      `  --${name}${shown ? ` (default ${String(f.default)})` : ''}`,
      ...wrap(f.help, 92).map((l) => `      ${l}`),
    );
  }
  return lines.join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}
