// `npm run faults` (the fault matrix) runs on a stack of its own and holds its invariants: after
// each fault every Secret converges to the vault's current values, and at no moment is a managed
// Secret deleted or emptied or a foreign one touched. No timing is asserted; the figures go to the
// README's table by hand from `npm run faults` runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';

interface Results {
  secretSyncs: number;
  results: {
    fault: string;
    convergeSeconds: number;
    failedReconciles: number;
    statusDuringFault: Record<string, number>;
  }[];
  violations: string[];
  readyAtEnd: Record<string, number>;
}

test(
  'every fault of the matrix ends in convergence, with nothing deleted, emptied or clobbered',
  () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sss-faults-')), 'faults.json');
    const run = spawnSync('npm', ['run', 'faults', '--', `--out=${out}`], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 15 * 60_000,
    });
    expect({ status: run.status, tail: run.status === 0 ? '' : `${run.stdout}\n${run.stderr}`.slice(-4000) }).toEqual({
      status: 0,
      tail: '',
    });
    const r = JSON.parse(readFileSync(out, 'utf8')) as Results;
    expect(r.violations).toEqual([]);
    // FAULTS_ONLY (test/env/compat.sh on kine): the rows whose names contain it; otherwise all 18.
    const only = process.env.FAULTS_ONLY;
    if (only) {
      expect(r.results.length).toBeGreaterThan(0);
      for (const x of r.results) expect(x.fault).toContain(only);
    } else expect(r.results.map((x) => x.fault)).toHaveLength(18);
    for (const x of r.results) expect([x.fault, Number.isFinite(x.convergeSeconds)]).toEqual([x.fault, true]);
    // Faults of the provider path show as provider errors on the SecretSyncs while they last.
    for (const name of [
      'provider SIGKILLed mid-Mount, restarted after 10 s',
      'Key Vault 429 storm without Retry-After',
    ]) {
      const x = r.results.find((y) => y.fault === name);
      if (only && !x) continue;
      expect(x!.statusDuringFault.UpdateFailedProviderError).toBeGreaterThan(0);
    }
    // Afterwards, every SecretSync (the foreign-named ones aside) is healthy again.
    expect(Object.keys(r.readyAtEnd).filter((reason) => !reason.endsWith('Succeeded'))).toEqual([]);
  },
  16 * 60_000,
);
