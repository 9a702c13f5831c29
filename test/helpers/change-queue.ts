// provider-azure's change queue as tests, the sandbox, the fault matrix and the bench give it: the
// flags the chart sets from provider.changeEvents, and the projected ServiceAccount token the
// chart mounts into the provider container (audience api://AzureADTokenExchange).
import type { CoreV1Api } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import type { AzureStack } from '../env/azure/client.js';

export interface ChangeQueue {
  /** https://<account>.queue.core.windows.net/<queue> */
  url: string;
  /** The provider's queue identity (workload identity), and its tenant. */
  clientId: string;
  tenantId: string;
  tokenFile: string;
}

export function changeQueueFlags(q: ChangeQueue): string[] {
  return [
    `--change-queue-url=${q.url}`,
    '--change-queue-identity=workload-identity',
    `--change-queue-client-id=${q.clientId}`,
    `--change-queue-tenant-id=${q.tenantId}`,
    `--change-queue-token-file=${q.tokenFile}`,
  ];
}

/**
 * Writes a token of the ServiceAccount for api://AzureADTokenExchange to `file`, as the kubelet
 * projects it. A day long: the kubelet would rotate it, nothing does here.
 */
export async function writeProviderToken(
  core: CoreV1Api,
  o: { namespace: string; serviceAccount: string; file: string },
): Promise<void> {
  const tr = await core.createNamespacedServiceAccountToken({
    name: o.serviceAccount,
    namespace: o.namespace,
    body: { spec: { audiences: ['api://AzureADTokenExchange'], expirationSeconds: 24 * 3600 } },
  });
  writeFileSync(o.file, tr.status?.token ?? '', { mode: 0o600 });
}

/**
 * The operator's part of README "Change events" on the stack: the queue, the vault's event
 * subscription into it, and the provider's own identity — federated with `reader.serviceAccount`,
 * "Storage Queue Data Message Processor" on that queue and nothing else — with its projected
 * token written to `tokenFile`. The ServiceAccount must exist.
 */
export async function vaultEventsQueue(o: {
  core: CoreV1Api;
  azure: AzureStack;
  vault: string;
  queue: string;
  reader: { name: string; namespace: string; serviceAccount: string };
  tokenFile: string;
}): Promise<{ subscription: string; changeQueue: ChangeQueue }> {
  const url = await o.azure.createQueue(o.queue);
  const subscription = await o.azure.subscribeVaultEvents({ vault: o.vault, queue: o.queue });
  const reader = await o.azure.createWorkloadIdentity({ ...o.reader, issuer: o.azure.info.k8s.issuer });
  await o.azure.assignQueueRole('Storage Queue Data Message Processor', reader.clientId, { queue: o.queue });
  await writeProviderToken(o.core, { ...o.reader, file: o.tokenFile });
  return {
    subscription,
    changeQueue: { url, clientId: reader.clientId, tenantId: o.azure.tenantId, tokenFile: o.tokenFile },
  };
}
