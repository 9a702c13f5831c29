// `npm run bench -- --quick` keeps working: all six scenarios run on stacks of their own and land
// in the results file. No timing is asserted (shared machines are noisy); counts are.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/env/control-plane.js';

interface Results {
  quick: boolean;
  machine: { cpus: number; memoryGiB: number };
  scenarios: {
    limit: { bestPerSecond: number; runs: { concurrency: number; opsPerSecond: number }[] };
    initialSync: { runs: { provider: string; n: number; perSecond: number; secrets?: number; ratioToLimit: number }[] };
    fastLane: { runs: number; p50Ms: number; p99Ms: number; slowLaneDepthAtStart: number };
    keyVaultCallsPerPass: {
      distinctObjects: number;
      distinctObjectVersions: number;
      secretSyncs: number;
      passes: { pass: number; atVault: number; byProvider: number; providerMounts: number }[];
    };
    steadyCost: { managerPeakRssMb: number; providerPeakRssMb: number; rssAfterEachPass: unknown[] };
    latency: { runs: number; p50Ms: number; p99Ms: number };
  };
}

test(
  'the quick benchmark runs all six scenarios and writes their figures',
  () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sss-bench-')), 'quick.json');
    const run = spawnSync('npm', ['run', 'bench', '--', '--quick', `--out=${out}`], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 8 * 60_000,
    });
    expect({ status: run.status, tail: run.status === 0 ? '' : `${run.stdout}\n${run.stderr}`.slice(-3000) }).toEqual({
      status: 0,
      tail: '',
    });
    for (const line of [
      '1. limit:',
      '2. initial sync, example provider',
      '2. initial sync, provider-azure',
      '3. fast lane:',
      '4/5. pass 1:',
      '5. steady cost:',
      '6. latency:',
    ]) {
      expect(run.stdout).toContain(line);
    }
    const r = JSON.parse(readFileSync(out, 'utf8')) as Results;
    const s = r.scenarios;
    expect(r.quick).toBe(true);
    expect(r.machine.cpus).toBeGreaterThan(0);
    expect(s.limit.runs.length).toBeGreaterThan(1);
    expect(s.limit.bestPerSecond).toBeGreaterThan(0);
    // Every SecretSync of the example-provider batch has its Secret.
    const example = s.initialSync.runs.find((x) => x.provider.startsWith('example'))!;
    expect(example.secrets).toBe(example.n);
    expect(s.initialSync.runs.some((x) => x.provider.startsWith('provider-azure'))).toBe(true);
    expect(s.fastLane.runs).toBeGreaterThan(0);
    expect(s.fastLane.slowLaneDepthAtStart).toBeGreaterThan(0);
    expect(s.latency.runs).toBeGreaterThan(0);
    // Key Vault, counted at the vault and by the provider: the same requests. After the first pass
    // (which may fetch the pinned history versions), a pass costs at most one read per distinct
    // (object, version) — not one per SecretSync.
    const later = s.keyVaultCallsPerPass.passes.slice(1);
    expect(later.length).toBeGreaterThan(0);
    for (const p of s.keyVaultCallsPerPass.passes) expect(p.atVault).toBe(p.byProvider);
    for (const p of later) expect(p.atVault).toBeLessThanOrEqual(s.keyVaultCallsPerPass.distinctObjectVersions);
    expect(s.steadyCost.rssAfterEachPass.length).toBe(later.length + 1);
    expect(s.steadyCost.managerPeakRssMb).toBeGreaterThan(0);
    expect(s.steadyCost.providerPeakRssMb).toBeGreaterThan(0);
  },
  9 * 60_000,
);
