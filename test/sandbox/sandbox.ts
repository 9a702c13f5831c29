// `npm run sandbox`: the Secret Store extension guide, replayed step by step on the local stack
// (walkthrough.ts), and the guide's `az` commands against the running sandbox (vault-commands.ts).
//   npm run sandbox              build, walk through the guide, then keep running (Ctrl-C stops)
//   npm run sandbox -- --once    walk through, verify, tear down (exit 1 on a wrong value)
//   npm run sandbox -- --pod     the same with the real pod: a node (kubelet, containerd) runs the
//                                chart's Deployment, installed with helm from deploy/chart
//   npm run sandbox -- rotate [value]   add a version to my-secret in the running sandbox
//   npm run sandbox -- --help    every option and command (commands.ts)
// Each part is imported only when asked for: `--help`, or a command with no sandbox running,
// answers at once instead of after loading the stack's and the SDKs' modules; and nothing that
// needs the build (proto's dist, the bundles) loads before the walkthrough has built it.
import { fileURLToPath } from 'node:url';
import { buildForSandbox } from './build.js';
import { parseSandboxArgs, sandboxUsage } from './commands.js';

const SANDBOX_DIR = process.env.SSS_SANDBOX_DIR ?? fileURLToPath(new URL('../../.stack/sandbox', import.meta.url));

const args = parseSandboxArgs(process.argv.slice(2));
if ('error' in args) {
  console.error(`${args.error}\n\n${sandboxUsage()}`);
  process.exit(2);
} else if (args.command === 'help') {
  console.log(sandboxUsage());
} else if (args.command === 'walkthrough') {
  if (args.build) {
    console.log('\n== Build');
    // Before the walkthrough's modules load: they need what the build makes.
    await buildForSandbox({ log: (m) => console.log(`  ${m}`) }).catch((e: unknown) => {
      console.error(`\nThe sandbox failed at the build: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    });
  }
  const { walkthrough } = await import('./walkthrough.js');
  await walkthrough({ dir: SANDBOX_DIR, once: args.once, pod: args.pod, kubeVersion: args.kubeVersion });
} else {
  const { runVaultCommand } = await import('./vault-commands.js');
  // One line on failure, no stack trace: what went wrong, and for no sandbox, how to start one.
  await runVaultCommand({ dir: SANDBOX_DIR, command: args.command, args: args.args }).catch((e: unknown) => {
    console.error(`sandbox ${args.command}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
