// `npm run stack -- <command>`: the local stack by hand (test/env/stack-commands.ts lists the
// commands; `--help` prints them).
import { ensureBinaries } from './control-plane.js';
import { cleanupNode } from './node-cleanup.js';
import { stopRecorded } from './processes.js';
import { startStack, toEnv } from './stack.js';
import { parseStackArgs, stackUsage } from './stack-commands.js';
import { resolveKubeVersion } from './versions.js';

const args = parseStackArgs(process.argv.slice(2));

if ('error' in args) {
  console.error(`${args.error}\n\n${stackUsage()}`);
  process.exit(2);
} else if (args.command === 'help') {
  console.log(stackUsage());
} else if (args.command === 'build') {
  console.log(await ensureBinaries(undefined, resolveKubeVersion(args.kubeVersion)));
} else if (args.command === 'down') {
  const dir = args.dir!;
  await cleanupNode(dir); // a node's containers, mounts and cgroups, if one ran there
  // The recorded process groups, then the recorded scratch folders (etcd's data in /dev/shm).
  console.log(`stopped: ${(await stopRecorded(dir)).join(', ') || 'nothing was running'}`);
} else {
  // This program stops the stack itself on a signal: the default handler would kill the processes
  // and exit first, leaving etcd's data folder in /dev/shm behind.
  const stack = await startStack({
    ...(args.dir ? { dir: args.dir } : {}),
    handleSignals: false,
    kubeVersion: resolveKubeVersion(args.kubeVersion),
  });
  console.log('\nThe stack is running. In another shell:');
  for (const [k, v] of Object.entries(toEnv(stack.info))) console.log(`  export ${k}=${v}`);
  console.log('Ctrl-C stops it.');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  setInterval(() => undefined, 1 << 30);
}
