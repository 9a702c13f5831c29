#!/usr/bin/env node
// provider-kit: the kit's command. `provider-kit conformance` checks a running provider (--socket)
// or one it starts (the command after `--`, or --command); `provider-kit watch` prints a running
// provider's change notices.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { report, runConformance, type ConformanceOptions, type Fixture } from './conformance.js';
import { watchCommand } from './watch.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const USAGE = `usage: provider-kit conformance --fixture fixture.json [options] -- <command> [args…]
       provider-kit conformance --fixture fixture.json [options] --socket unix:///path/provider.sock
       provider-kit watch --socket unix:///path/provider.sock
       provider-kit --help | --version

Checks that a provider speaks the Secrets Store CSI provider API (v1alpha1.CSIDriverProvider) as
the manager relies on, and its change notices (ObjectChanges, proto/changes.proto) when it serves
them; a provider without them passes ("not served (callers poll)"). Each check prints one line; advice (good practice the protocol does not
require) is printed apart and never fails the run. Exit code: 0 when no check failed, 1 when one
did, 2 for a usage error.

The provider:
  -- <command> [args…]     start this command (arguments as given, spaces kept); {endpoint} in an
                           argument becomes the socket to serve as unix:///…/provider.sock,
                           {socket} as its bare path, e.g.
                           -- node "my provider.js" --endpoint {endpoint}
                           -- vault-csi-provider -endpoint {socket}
                           With a command the suite also checks shutdown on SIGTERM.
  --command "<cmd args…>"  the same as one string, split at spaces (no quoting: use -- for
                           arguments that contain spaces)
  --socket unix:///path    a provider that is already running

Options:
  --fixture file.json      the Mounts to send: {valid, unknownParameter?, invalid?, large?},
                           and change?: {command: [...]}, a command that changes an object of
                           the valid Mount (the suite then waits for a notice naming its key)
  --timeout-ms N           deadline of each call (default 10000)
  --max-message-bytes N    the caller's receive limit (default 4194304, the manager's)
  -h, --help               this text
  -v, --version            the kit's version

provider-kit watch prints the change notices of a running provider, as the manager receives them,
one line per event: "<time> state receiving", "<time> state not receiving <reason>: <message>",
"<time> changed <kind> <key>…". It runs until interrupted (exit 0); when the stream ends or fails
it says why and exits 1 ("change notices: not served (callers poll)" for a provider without them).`;

function usageError(message: string): never {
  console.error(`provider-kit: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) usageError(`--${flag} takes a positive whole number, not '${value}'`);
  return n;
}

function conformanceOptions(args: string[]): ConformanceOptions {
  const dashes = args.indexOf('--');
  const command = dashes >= 0 ? args.slice(dashes + 1) : undefined;
  let parsed;
  try {
    parsed = parseArgs({
      args: dashes >= 0 ? args.slice(0, dashes) : args,
      options: {
        socket: { type: 'string' },
        command: { type: 'string' },
        fixture: { type: 'string' },
        'timeout-ms': { type: 'string' },
        'max-message-bytes': { type: 'string' },
      },
    });
  } catch (e) {
    usageError((e as Error).message);
  }
  const { values } = parsed;
  if (!values.fixture) usageError('--fixture is required');
  const argv = command ?? values.command?.split(' ').filter(Boolean);
  if (command && values.command) usageError('give the command either after -- or with --command, not both');
  if (!values.socket === !argv) usageError('give the provider: a command after --, --command, or --socket');
  if (argv && argv.length === 0) usageError('the command after -- is empty');
  let fixture: Fixture;
  try {
    fixture = JSON.parse(readFileSync(values.fixture, 'utf8')) as Fixture;
  } catch (e) {
    usageError(`cannot read the fixture ${values.fixture}: ${(e as Error).message}`);
  }
  const timeoutMs = positiveInt('timeout-ms', values['timeout-ms']);
  const maxMessageBytes = positiveInt('max-message-bytes', values['max-message-bytes']);
  return {
    fixture,
    ...(argv ? { command: argv } : { endpoint: values.socket! }),
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(maxMessageBytes ? { maxMessageBytes } : {}),
  };
}

function watch(args: string[]): Promise<number> {
  let socket: string | undefined;
  try {
    ({ socket } = parseArgs({ args, options: { socket: { type: 'string' } } }).values);
  } catch (e) {
    usageError((e as Error).message);
  }
  if (!socket) usageError('watch: give the provider with --socket unix:///path/provider.sock');
  const ctl = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => ctl.abort());
  return watchCommand({ endpoint: socket, signal: ctl.signal, write: (l) => console.log(l) });
}

const [sub, ...rest] = process.argv.slice(2);
if (sub === '--help' || sub === '-h' || sub === 'help') {
  console.log(USAGE);
  process.exit(0);
}
if (sub === '--version' || sub === '-v') {
  console.log(VERSION);
  process.exit(0);
}
if (sub !== 'conformance' && sub !== 'watch') usageError(sub ? `unknown command '${sub}'` : 'no command given');
const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
if (own.includes('--help') || own.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
if (sub === 'watch') process.exit(await watch(rest));
const results = await runConformance(conformanceOptions(rest));
process.exit(report(results) ? 0 : 1);
