// The sandbox's `az` commands (commands.ts lists them): each shows the `az` line it stands for and
// does it against the running sandbox's Key Vault stand-in.
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { AzureStack } from '../env/azure/client.js';
import type { StackInfo } from '../env/stack.js';
import type { VaultCommand } from './commands.js';

export const SANDBOX = {
  vault: 'my-kv',
  secret: 'my-secret',
  certificate: 'my-cert',
  namespace: 'my-namespace',
  /** The guide's default rotationPollIntervalInSeconds: with change events on, polling is the backstop. */
  rotationSeconds: 3600,
  /** The storage queue the vault's Event Grid subscription delivers to (README "Change events"). */
  queue: 'kv-events',
  /** The provider's own identity, for the queue alone. */
  queueIdentity: 'provider-queue-reader',
} as const;

/** No sandbox answers in the folder: said in one line, at once. */
export class NoSandboxError extends Error {
  override readonly name = 'NoSandboxError';
  constructor(readonly dir: string) {
    super(`no sandbox is running in ${dir}: start one with \`npm run sandbox\` (it stays up until Ctrl-C)`);
  }
}

/** A TCP connection to the address, or false within the timeout: the stand-in is up or it is not. */
function answers(url: string, timeoutMs = 2_000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The running sandbox's vault, or NoSandboxError — a stopped sandbox leaves its stack.json behind. */
export async function connectSandbox(dir: string): Promise<AzureStack> {
  const file = join(dir, 'stack.json');
  if (!existsSync(file)) throw new NoSandboxError(dir);
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  if (!(await answers(info.azure.adminUrl))) throw new NoSandboxError(dir);
  // The stack's and the SDK's modules take seconds to load: only once there is a sandbox.
  const [{ AzureStack }, { toEnv }] = await Promise.all([import('../env/azure/client.js'), import('../env/stack.js')]);
  Object.assign(process.env, toEnv(info));
  return new AzureStack(info);
}

function show(cmd: string): void {
  console.log(`$ ${cmd}`);
}

const watchHint = () =>
  `watch it: kubectl get secret secret-sync-name -n ${SANDBOX.namespace} -o jsonpath="{.data.${SANDBOX.secret}-data-key0}" | base64 -d`;

async function rotate(azure: AzureStack, [value]: string[]): Promise<void> {
  const v = value ?? `Hello-${new Date().toISOString().slice(11, 19)}`;
  show(`az keyvault secret set --vault-name "${SANDBOX.vault}" --name "${SANDBOX.secret}" --value '${v}'`);
  const version = await azure.setSecret(SANDBOX.vault, SANDBOX.secret, v);
  console.log(
    `new version ${version}; Key Vault's SecretNewVersionCreated event reaches the Secret within seconds (through the queue ${SANDBOX.queue}; polling every ${SANDBOX.rotationSeconds} s is the backstop).`,
  );
  console.log(watchHint());
}

// Key Vault publishes no event for a change of attributes, only for new versions and (near) expiry
// (learn.microsoft.com/azure/key-vault/general/event-grid-overview): a disable is seen at the next
// poll, or at once with a new forceSynchronization.
const describeHint = () =>
  `Key Vault sends no event for it: the manager reads it at the next poll (within ${SANDBOX.rotationSeconds} s), or now with
${forceSyncCommand()}
then: kubectl describe secretsync secret-sync-name -n ${SANDBOX.namespace}`;

/**
 * `kubectl patch` setting a new spec.forceSynchronization (the time in seconds: the CRD allows
 * letters, digits, '-', '.' and '_'): the SecretSync re-syncs at once.
 */
export const forceSyncCommand = (at = String(Math.floor(Date.now() / 1000))) =>
  `kubectl patch secretsync secret-sync-name -n ${SANDBOX.namespace} --type merge -p '{"spec":{"forceSynchronization":"${at}"}}'`;

async function disable(azure: AzureStack, [version]: string[]): Promise<void> {
  const v = version ?? (await azure.currentSecretVersion(SANDBOX.vault, SANDBOX.secret));
  show(
    `az keyvault secret set-attributes --vault-name "${SANDBOX.vault}" --name "${SANDBOX.secret}" --version ${v} --enabled false`,
  );
  await azure.disableSecretVersion(SANDBOX.vault, SANDBOX.secret, v);
  console.log(`version ${v} disabled; ${describeHint()}`);
  console.log(watchHint());
}

const UNIT_SECONDS: Record<string, number> = { m: 60, h: 3_600, d: 86_400 };

/** `expire`'s <when>: a date-time, or a time from now (30m, 2h, 5d). */
export function parseWhen(when: string, now = Date.now()): Date {
  const rel = /^(\d+)([mhd])$/.exec(when);
  if (rel) return new Date(now + Number(rel[1]) * UNIT_SECONDS[rel[2]!]! * 1000);
  const at = /^\d{4}-\d{2}-\d{2}/.test(when) ? Date.parse(when) : NaN;
  if (Number.isNaN(at))
    throw new Error(`'${when}' is neither a date-time (2027-01-31T00:00:00Z) nor a time from now (30m, 2h, 5d)`);
  return new Date(at);
}

async function expire(azure: AzureStack, [when, version]: string[]): Promise<void> {
  // Key Vault keeps whole seconds.
  const expiresOn = new Date(Math.floor(parseWhen(when!).getTime() / 1000) * 1000);
  const v = version ?? (await azure.currentSecretVersion(SANDBOX.vault, SANDBOX.secret));
  const at = expiresOn.toISOString().replace('.000Z', 'Z');
  show(
    `az keyvault secret set-attributes --vault-name "${SANDBOX.vault}" --name "${SANDBOX.secret}" --version ${v} --expires ${at}`,
  );
  await azure.setSecretExpiry(SANDBOX.vault, { name: SANDBOX.secret, version: v, expiresOn });
  console.log(`version ${v} expires ${at}; the SecretSync's Expiring condition shows it when provider-azure reads the
version again (a version it has read is kept up to --version-cache-ttl-seconds, 15 min):
kubectl describe secretsync secret-sync-name -n ${SANDBOX.namespace}`);
}

/** The file's certificate as `importCertificate` takes it: PKCS#12 by its extension, else PEM. */
function certificateFile(file: string): { pem: string } | { pfx: Buffer } {
  return /\.(pfx|p12)$/i.test(file) ? { pfx: readFileSync(file) } : { pem: readFileSync(file, 'utf8') };
}

async function importCert(azure: AzureStack, [file]: string[]): Promise<void> {
  let cert: { pem: string } | { pfx: Buffer };
  let shown = file;
  if (file) cert = certificateFile(file);
  else {
    // As `openssl req -x509 -newkey rsa:2048 -subj /CN=my-cert` would make one.
    const { createCa } = await import('../env/pki.js');
    const self = createCa(SANDBOX.certificate, 365);
    cert = { pem: `${self.key}${self.cert}` };
    shown = 'my-cert.pem';
    console.log('(a new self-signed certificate, CN=my-cert, as my-cert.pem)');
  }
  show(
    `az keyvault certificate import --vault-name "${SANDBOX.vault}" --name "${SANDBOX.certificate}" --file ${shown}`,
  );
  const { version } = await azure.importCertificate(SANDBOX.vault, SANDBOX.certificate, cert);
  console.log(`imported as version ${version}. To sync it, add to spc.yaml's objects array:
        - |
          objectName: ${SANDBOX.certificate}
          objectType: secret          # the private key and the certificates, PEM
and to ss.yaml's data:
    - sourcePath: ${SANDBOX.certificate}
      targetKey: ${SANDBOX.certificate}.pem
then apply both again with kubectl apply -f.`);
}

const RUN: Record<VaultCommand, (azure: AzureStack, args: string[]) => Promise<void>> = {
  rotate,
  disable,
  expire,
  'import-cert': importCert,
};

export async function runVaultCommand(o: { dir: string; command: VaultCommand; args: string[] }): Promise<void> {
  const azure = await connectSandbox(o.dir);
  await RUN[o.command](azure, o.args);
}
