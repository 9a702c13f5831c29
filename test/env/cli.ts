// `npm run stack -- up [dir]`: starts the local stack in the foreground (Ctrl-C stops it);
// `npm run stack -- down <dir>`: stops what a crashed run left in that folder;
// `npm run stack -- build`: builds (or finds) the control-plane binaries.
import { ensureBinaries } from './control-plane.js';
import { cleanupNode } from './node-cleanup.js';
import { stopRecorded } from './processes.js';
import { startStack, toEnv } from './stack.js';

const [cmd = 'up', dir] = process.argv.slice(2);

if (cmd === 'build') {
  console.log(await ensureBinaries());
} else if (cmd === 'down') {
  if (!dir) throw new Error('usage: stack down <state folder>');
  await cleanupNode(dir); // a node's containers, mounts and cgroups, if one ran there
  console.log(`stopped: ${(await stopRecorded(dir)).join(', ') || 'nothing was running'}`);
} else if (cmd === 'up') {
  // This program stops the stack itself on a signal: the default handler would kill the processes
  // and exit first, leaving etcd's data folder in /dev/shm behind.
  const stack = await startStack({ ...(dir ? { dir } : {}), handleSignals: false });
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
} else {
  console.error(`unknown command '${cmd}' (up | down | build)`);
  process.exit(2);
}
