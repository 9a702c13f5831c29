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
  namespace: 'my-namespace',
  rotationSeconds: 10,
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
    `new version ${version}; the manager picks it up within ${SANDBOX.rotationSeconds} s (the sandbox's rotation interval).`,
  );
  console.log(watchHint());
}

const RUN: Record<VaultCommand, (azure: AzureStack, args: string[]) => Promise<void>> = { rotate };

export async function runVaultCommand(o: { dir: string; command: VaultCommand; args: string[] }): Promise<void> {
  const azure = await connectSandbox(o.dir);
  await RUN[o.command](azure, o.args);
}
