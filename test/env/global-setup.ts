// Starts the local stack once per `npm test` run. Test files find it through SSS_STACK_FILE and
// friends (inherited by workers and by product processes the tests start).
import { join } from 'node:path';
import { yamlFilesIn, repoRoot } from './control-plane.js';
import { PRELOAD, startStack, toEnv, type Stack } from './stack.js';

declare global {
  var __SSS_STACK__: Stack | undefined;
}

export async function globalSetup(): Promise<void> {
  if (!process.env.NODE_OPTIONS?.includes('preload.mjs')) {
    throw new Error(
      'integration tests need the test preload: run them through `npm test` (it passes --import test/env/preload.mjs)',
    );
  }
  const stack = await startStack({
    manifests: [
      ...yamlFilesIn(join(repoRoot, 'deploy', 'crds')),
      ...yamlFilesIn(join(repoRoot, 'test', 'env', 'manifests', 'crds')),
    ],
    log: (m) => process.stderr.write(`[stack] ${m}\n`),
  });
  globalThis.__SSS_STACK__ = stack;
  Object.assign(process.env, toEnv(stack.info), {
    NODE_OPTIONS: `--import ${PRELOAD}`,
    NODE_EXTRA_CA_CERTS: stack.info.caFile,
  });
}

export async function globalTeardown(): Promise<void> {
  await globalThis.__SSS_STACK__?.stop();
}
