// Azurite, Microsoft's Azure Storage emulator (npm `azurite`), queue service only: the real queue
// service that Event Grid delivers Key Vault events into and that the provider pulls from. It runs
// behind the Azure stand-in's queue front (queue-front.ts), which adds what Azurite lacks (token
// signatures and Azure RBAC); Azurite itself still checks every token (`--oauth basic`, allowed
// over HTTPS only). What it checks, from its source (dist/src/queue/authentication/
// QueueTokenAuthenticator.js, 3.37): the token decodes as a JWT; `nbf`, `exp` and `iat` are present
// and now lies between nbf and exp; `iss` starts with https://sts.windows.net/ (or the other
// clouds' and PPE's STS), any tenant; `aud` is https://storage.azure.com[/], the storage app id
// e406a681-f3d4-42a8-90b6-c2b029497af1, or https://<account>.queue.core.windows.net[/] of the
// account addressed. No signature, no scope, no role. The Entra stand-in's tokens pass as real
// Entra's do: v1 tokens with aud https://storage.azure.com and iss https://sts.windows.net/<tenant>/
// (the example token in that same source file has this shape).
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
