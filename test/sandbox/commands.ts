// The command line of `npm run sandbox`: one table, from which both the parser and `--help` are
// made, so that neither can name a command or an option the other does not know.
import { KUBE_VERSIONS, takeKubeVersion } from '../env/versions.js';

export const WALKTHROUGH_OPTIONS = {
  '--once': 'walk through, verify (exit 1 on a wrong value), then tear everything down',
  '--pod': "run the chart's pod on a node of the stack (kubelet, containerd) instead of two processes",
  '--no-build': 'skip building the manager and provider-azure first (for a tree already built, as by npm test)',
} as const;

/** Commands against a running sandbox's Key Vault stand-in, each what the guide does with `az`. */
export const VAULT_COMMANDS = {
  rotate: {
    args: '[value]',
    help: [
      "add a version of my-secret (default value: Hello-<time>); Key Vault's event brings it to the",
      'Secret within seconds',
    ],
  },
  disable: {
    args: '[version]',
    help: [
      'disable a version of my-secret (default: the current one); the history of 2 then holds the',
      'newest enabled versions at the next poll, or at once after the forceSynchronization it prints',
    ],
  },
  expire: {
    args: '<when> [version]',
    help: [
      "set a version's expiry (default: the current one's) to a date-time (2027-01-31T00:00:00Z) or a",
      "time from now (30m, 2h, 5d); within 30 days the SecretSync's Expiring condition turns True once",
      'provider-azure reads the version again (one it has read stays cached up to 15 min)',
    ],
  },
  'import-cert': {
    args: '[file]',
    help: [
      'import a certificate as my-cert from a PEM file (private key and certificates) or a PKCS#12',
      'file (.pfx, .p12; no password); default: a new self-signed one',
    ],
  },
} as const;

export type VaultCommand = keyof typeof VAULT_COMMANDS;

export type SandboxArgs =
  | { command: 'walkthrough'; once: boolean; pod: boolean; build: boolean; kubeVersion?: string }
  | { command: VaultCommand; args: string[] }
  | { command: 'help' }
  | { error: string };

export function sandboxUsage(): string {
  const lines = [
    'Usage: npm run sandbox [-- <option>...]     the guide, step by step, on a local stack',
    '       npm run sandbox -- <command> [args]  in another terminal, against the running sandbox',
    '',
    'Options:',
    ...Object.entries(WALKTHROUGH_OPTIONS).flatMap(([o, help]) => [`  ${o}`, `      ${help}`]),
    '  --kube-version <v>',
    `      run the stack on another Kubernetes release (${Object.keys(KUBE_VERSIONS).join(', ')}; the newest by default)`,
    '  --help',
    '      this text',
    '',
    'Commands (what the guide does with az, against the sandbox vault my-kv):',
  ];
  for (const [name, c] of Object.entries(VAULT_COMMANDS))
    lines.push(`  ${name} ${c.args}`.trimEnd(), ...c.help.map((l) => `      ${l}`));
  return lines.join('\n');
}

export function parseSandboxArgs(argv: string[]): SandboxArgs {
  if (argv.includes('--help') || argv.includes('-h')) return { command: 'help' };
  const [first, ...rest] = argv;
  if (first !== undefined && Object.hasOwn(VAULT_COMMANDS, first)) {
    const command = first as VaultCommand;
    const spec = VAULT_COMMANDS[command].args;
    const required = spec.split(' ').filter((a) => a.startsWith('<')).length;
    const allowed = spec.split(' ').filter(Boolean).length;
    if (rest.length < required || rest.length > allowed)
      return { error: `${command} takes ${spec || 'no arguments'}, got: ${rest.join(' ') || 'none'}` };
    return { command, args: rest };
  }
  const { kubeVersion, rest: flags, error } = takeKubeVersion(argv);
  if (error) return { error };
  const unknown = flags.filter((a) => !Object.hasOwn(WALKTHROUGH_OPTIONS, a));
  if (unknown.length) return { error: `unknown command or option: ${unknown.join(' ')}` };
  return {
    command: 'walkthrough',
    once: flags.includes('--once'),
    pod: flags.includes('--pod'),
    build: !flags.includes('--no-build'),
    ...(kubeVersion ? { kubeVersion } : {}),
  };
}
