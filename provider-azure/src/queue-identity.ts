// The provider's own identity for the change queue: workload identity from the provider
// container's projected ServiceAccount token (as the Azure workload identity webhook mounts it:
// AZURE_FEDERATED_TOKEN_FILE), or the node's managed identity. Built from the same credentials as
// the Mounts' (credentials.ts: Entra deadlines, IMDS bounds). It needs a queue data role only;
// Mounts never use it, so it reads no vault.
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { errorMessage } from '@secret-store-sync/proto';
import { open } from 'node:fs/promises';
import { QueueTokenError } from './change-queue.js';
import { resolveCloud, type CloudEnvironment, type CloudName } from './cloud.js';
import type { QueueIdentity } from './config.js';
import { nodeManagedIdentityCredential, workloadIdentityCredential } from './credentials.js';
import { redact } from './log.js';

/** A ServiceAccount token is a few KiB; anything larger is not one. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

export function queueCredential(identity: QueueIdentity, cloud: CloudEnvironment): TokenCredential {
  const inner =
    identity.mode === 'workloadIdentity'
      ? workloadIdentityCredential({
          tenantId: identity.tenantId,
          clientId: identity.clientId,
          cloud,
          // Read at each token request: the kubelet rewrites the file before the token expires.
          assertion: () => readToken(identity.tokenFile),
        })
      : nodeManagedIdentityCredential(identity.clientId);
  return new MarkedFailures(inner);
}

/** Who reads the queue, for state messages and logs. */
export function describeQueueIdentity(identity: QueueIdentity): string {
  return identity.mode === 'workloadIdentity'
    ? `workload identity '${identity.clientId}'`
    : `the node's managed identity${identity.clientId ? ` '${identity.clientId}'` : ''}`;
}

async function readToken(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_TOKEN_FILE_BYTES) throw new Error(`${file} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
    const token = buf.subarray(0, bytesRead).toString('utf8').trim();
    if (!token) throw new Error(`${file} is empty`);
    return token;
  } finally {
    await handle.close();
  }
}

/** Token failures told apart from the queue's own answers (change-queue.ts queueFailure). */
class MarkedFailures implements TokenCredential {
  constructor(private readonly inner: TokenCredential) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    try {
      return await this.inner.getToken(scopes, options);
    } catch (e) {
      if (options?.abortSignal?.aborted) throw e;
      throw new QueueTokenError(redact(errorMessage(e)).split(/\r?\n/)[0]!);
    }
  }
}

/** Where the queue's identity gets tokens: the provider's default cloud, or AZURE_AUTHORITY_HOST. */
export async function queueCloud(name: CloudName): Promise<CloudEnvironment> {
  if (name !== 'AzureStackCloud') return resolveCloud({ name }, '');
  const host = process.env.AZURE_AUTHORITY_HOST;
  if (!host)
    throw new Error(
      "--cloud-name=AzureStackCloud: the change queue's identity needs Entra ID's address in AZURE_AUTHORITY_HOST (chart value provider.authorityHost)",
    );
  return { name, keyVaultDnsSuffix: '', authorityHost: host.replace(/\/+$/, '') };
}
