// The commands of `npm run stack` (test/env/cli.ts): one table, from which both the parser and
// `--help` are made, so that neither can name a command the other does not know.
import { KUBE_VERSIONS, takeKubeVersion } from './versions.js';

export const STACK_COMMANDS = {
  up: {
    args: '[dir]',
    help: [
      'start the local stack in the foreground: kube-apiserver, etcd, kube-controller-manager and the',
      'Entra ID and Key Vault stand-ins; state and logs in <dir> (a new temporary folder by default).',
      'Prints the environment that points tests and tools at it. Ctrl-C stops it and removes',
      "everything it started, etcd's data folder in /dev/shm included.",
    ],
  },
  down: {
    args: '<dir>',
    help: [
      'clean up after an `up` in <dir> that did not stop itself (killed, crashed): stops its',
      "processes, a node's containers, mounts and cgroups, and removes etcd's data folder.",
    ],
  },
  build: {
    args: '',
    help: [
      'build the control-plane binaries (kube-apiserver, etcd, …; minutes the first time) or find',
      'them in ~/.cache/secret-store-sync, and print their folder.',
    ],
  },
} as const;

export type StackCommand = keyof typeof STACK_COMMANDS;

export type StackArgs =
  { command: StackCommand; dir?: string; kubeVersion?: string } | { command: 'help' } | { error: string };

export function stackUsage(): string {
  const lines = ['Usage: npm run stack -- <command> [args]', '', 'Commands:'];
  for (const [name, c] of Object.entries(STACK_COMMANDS)) {
    lines.push(`  ${`${name} ${c.args}`.trimEnd()}`, ...c.help.map((l) => `      ${l}`));
  }
  lines.push(
    'Options (up, build):',
    `  --kube-version <v>`,
    `      the Kubernetes release: ${Object.keys(KUBE_VERSIONS).join(', ')} (the newest by default) or an exact 1.N.P;`,
    '      each is built once into a cache folder of its own. SSS_DATASTORE=kine runs kine (SQLite) for etcd.',
    '  --help',
    '      this text',
    '',
    'Without a command: up.',
  );
  return lines.join('\n');
}

export function parseStackArgs(argv: string[]): StackArgs {
  const { kubeVersion, rest: positional, error } = takeKubeVersion(argv);
  if (error) return { error };
  const [cmd = 'up', ...rest] = positional;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help' || rest.includes('--help')) return { command: 'help' };
  if (!Object.hasOwn(STACK_COMMANDS, cmd))
    return { error: `unknown command '${cmd}' (${Object.keys(STACK_COMMANDS).join(' | ')} | --help)` };
  const command = cmd as StackCommand;
  const spec = STACK_COMMANDS[command].args;
  const max = spec ? 1 : 0;
  if (rest.length > max) return { error: `${command} takes ${spec || 'no arguments'}, got: ${rest.join(' ')}` };
  if (spec.startsWith('<') && rest.length === 0) return { error: `${command} needs ${spec}` };
  if (kubeVersion && command === 'down') return { error: 'down takes no --kube-version' };
  return { command, ...(rest[0] ? { dir: rest[0] } : {}), ...(kubeVersion ? { kubeVersion } : {}) };
}
