// The sandbox's first step: build the manager and provider-azure (tsc -b, then deploy/bundle.mjs),
// saying so, and saying so again every 15 s while it runs — on a fresh clone it takes minutes.
// Imports nothing built: it runs before anything that needs the build is loaded.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withHeartbeat } from '../env/processes.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export async function buildForSandbox(o: { log: (msg: string) => void; everyMs?: number }): Promise<void> {
  const started = Date.now();
  o.log('building the manager and provider-azure: npm run build (tsc -b, then one esbuild bundle each)');
  const code = await withHeartbeat(
    { log: o.log, message: (s) => `still building (${s} s so far)`, everyMs: o.everyMs ?? 15_000 },
    () =>
      new Promise<number | null>((resolve, reject) =>
        // Its errors (a type error, say) go straight to the terminal.
        spawn('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] })
          .once('error', reject)
          .once('close', resolve),
      ),
  );
  if (code !== 0) throw new Error(`npm run build failed (exit ${code}); its output is above`);
  o.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
