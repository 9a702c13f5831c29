// The sandbox's change events (README "Change events"): what an operator does with `az` so that a
// new version in Key Vault reaches its Secrets in seconds — a storage queue, the vault's Event Grid
// system topic with a storage-queue subscription into it, and the provider's own identity with the
// queue role only — done against the stand-ins, each step shown as the `az` line it stands for.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { AzureStack } from '../env/azure/client.js';
import { STORAGE_SCOPE_PREFIX } from '../env/azure/client.js';
import { MANAGER_NAMESPACE, MANAGER_SERVICE_ACCOUNT } from '../env/manager-identity.js';
import type { StackInfo } from '../env/stack.js';
import { writeProviderToken as writeToken } from '../helpers/change-queue.js';
import { SANDBOX } from './vault-commands.js';

export interface ChangeEvents {
  queueUrl: string;
  /** The provider's queue identity: "Storage Queue Data Message Processor" on the queue, nothing in the vault. */
  clientId: string;
  tenantId: string;
}

/** The pod's ServiceAccount, which the provider container's projected token names. */
const PROVIDER_SUBJECT = `system:serviceaccount:${MANAGER_NAMESPACE}:${MANAGER_SERVICE_ACCOUNT}`;

export async function enableChangeEvents(o: {
  info: StackInfo;
  azure: AzureStack;
  resourceGroup: string;
  show: (cmd: string) => void;
}): Promise<ChangeEvents> {
  const { info, azure, show } = o;
  const { account } = info.azure.queue;
  const queueScope = `${STORAGE_SCOPE_PREFIX}${account}/queueServices/default/queues/${SANDBOX.queue}`;
  show(`az storage queue create --account-name ${account} --name ${SANDBOX.queue} --auth-mode login`);
  const queueUrl = await azure.createQueue(SANDBOX.queue);
  show(
    `az eventgrid system-topic create -g "${o.resourceGroup}" -n ${SANDBOX.vault}-events --topic-type microsoft.keyvault.vaults --source "$(az keyvault show -n ${SANDBOX.vault} --query id -o tsv)" --location <the vault's region>`,
  );
  show(
    `az eventgrid system-topic event-subscription create -g "${o.resourceGroup}" --system-topic-name ${SANDBOX.vault}-events -n to-${SANDBOX.queue} --endpoint-type storagequeue --endpoint "…/storageAccounts/${account}/queueservices/default/queues/${SANDBOX.queue}"`,
  );
  await azure.subscribeVaultEvents({ vault: SANDBOX.vault, queue: SANDBOX.queue, name: `to-${SANDBOX.queue}` });
  show(`az identity create --name "${SANDBOX.queueIdentity}" --resource-group "${o.resourceGroup}"`);
  const identity = await azure.createIdentity(SANDBOX.queueIdentity);
  show(
    `az identity federated-credential create --name provider-queue --identity-name ${SANDBOX.queueIdentity} --issuer ${info.k8s.issuer} --subject ${PROVIDER_SUBJECT}`,
  );
  await azure.addFederatedCredential(identity.clientId, {
    name: 'provider-queue',
    issuer: info.k8s.issuer,
    subject: PROVIDER_SUBJECT,
  });
  show(
    `az role assignment create --role "Storage Queue Data Message Processor" --assignee "${identity.clientId}" --scope …${queueScope.slice(queueScope.indexOf('/providers/'))}`,
  );
  await azure.assignQueueRole('Storage Queue Data Message Processor', identity.clientId, { queue: SANDBOX.queue });
  return { queueUrl, clientId: identity.clientId, tenantId: azure.tenantId };
}

/** The two-process mode's stand-in for the provider container's projected token, written to `file`. */
export async function writeProviderToken(info: StackInfo, file: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(info.k8s.kubeconfig);
  await writeToken(kc.makeApiClient(CoreV1Api), {
    namespace: MANAGER_NAMESPACE,
    serviceAccount: MANAGER_SERVICE_ACCOUNT,
    file,
  });
}

/** The chart values that turn change events on (README "Change events"). */
export function changeEventValues(e: ChangeEvents): string[] {
  return [
    '--set',
    `provider.changeEvents.queueUrl=${e.queueUrl}`,
    '--set',
    `provider.changeEvents.clientId=${e.clientId}`,
    '--set',
    `provider.changeEvents.tenantId=${e.tenantId}`,
  ];
}
