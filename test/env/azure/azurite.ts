// Azurite, Microsoft's Azure Storage emulator (npm `azurite`), queue service only: the real queue
// service that Event Grid delivers Key Vault events into and that the provider pulls from. It runs
// behind the Azure stand-in's queue front (queue-front.ts), which adds what Azurite lacks (token
// signatures and Azure RBAC); Azurite itself still checks every token's audience, issuer and
// lifetime (`--oauth basic`, which it allows over HTTPS only).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../control-plane.js';
import { freePort } from '../ports.js';
import { startProcess, waitUntil, type Managed } from '../processes.js';

/** The stack's one storage account; a real account name: 3-24 lowercase letters and digits. */
export const STORAGE_ACCOUNT = 'ssslocalevents';

export interface AzuriteInfo {
  /** Azurite's own HTTPS port on 127.0.0.1 (path-style URLs: https://127.0.0.1:PORT/<account>/<queue>). */
  port: number;
  account: string;
  /** The account's Shared Key, base64: what `az storage account keys list` shows. Admin use only. */
  key: string;
}

export async function startAzurite(o: {
  stateDir: string;
  certFile: string;
  keyFile: string;
}): Promise<{ process: Managed; info: AzuriteInfo }> {
  // A fresh key per run: nothing outside the stack can guess it, unlike Azurite's well-known one.
  const key = randomBytes(64).toString('base64');
  const port = await freePort();
  const workspace = join(o.stateDir, 'azurite');
  mkdirSync(workspace, { recursive: true });
  const proc = startProcess({
    name: 'azurite-queue',
    command: join(repoRoot, 'node_modules', '.bin', 'azurite-queue'),
    args: [
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(port),
      '--inMemoryPersistence',
      '--oauth',
      'basic',
      '--cert',
      o.certFile,
      '--key',
      o.keyFile,
      '--disableTelemetry',
      '--skipApiVersionCheck',
    ],
    // Its working folder (it takes no --location with --inMemoryPersistence): anything it writes stays in the stack.
    cwd: workspace,
    stateDir: o.stateDir,
    // AZURITE_ACCOUNTS replaces the well-known devstoreaccount1 (Azurite README, "Customized
    // storage accounts & keys").
    env: { ...process.env, NODE_OPTIONS: '', AZURITE_ACCOUNTS: `${STORAGE_ACCOUNT}:${key}` },
  });
  await waitUntil(
    'Azurite',
    async () => readFileSync(proc.logFile, 'utf8').includes('Azurite Queue service successfully listens on'),
    { timeoutMs: 30_000, process: proc, intervalMs: 100 },
  );
  return { process: proc, info: { port, account: STORAGE_ACCOUNT, key } };
}
