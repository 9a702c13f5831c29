// What a person does with `az` in the seed guide, against the stand-ins: identities, federated
// credentials, role assignments, vaults and Event Grid subscriptions through the admin API;
// secrets, keys and certificates through the real Azure SDK with the stack's operator service
// principal; queues through the real storage SDK with the account key (see eventgrid.ts for how
// Key Vault events reach a queue).
import { ClientSecretCredential } from '@azure/identity';
import { CertificateClient } from '@azure/keyvault-certificates';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { QueueClient, StorageSharedKeyCredential } from '@azure/storage-queue';
import { readFileSync } from 'node:fs';
import { adminCall, type StackInfo } from '../stack.js';
import {
  ARM_RESOURCE_GROUP,
  type FederatedCredential,
  type Identity,
  type KeyVaultRole,
  type QueueRole,
  type RoleAssignment,
} from './directory.js';

export const KEYVAULT_SCOPE_PREFIX = `${ARM_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/`;
export const STORAGE_SCOPE_PREFIX = `${ARM_RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/`;

/** Delivery faults of one event subscription (test/env/azure/eventgrid.ts DeliveryKnobs). */
export interface EventDelivery {
  copies?: number;
  hold?: boolean;
  delayMs?: number;
  dropNext?: number;
  dropFraction?: number;
  legacyShape?: boolean;
}

export function vaultUrl(name: string, dnsSuffix = 'vault.azure.net'): string {
  return `https://${name}.${dnsSuffix}/`;
}

/** `az keyvault update`: network rules, and whether the vault's own 429s carry Retry-After. */
export interface VaultSettings {
  network?: 'open' | 'privateLinkOnly' | 'firewall';
  throttleRetryAfter?: boolean;
  throttleLimit?: number;
}

export class AzureStack {
  private readonly ca: string;
  private readonly operator: ClientSecretCredential;
  /** Vaults made in a cloud other than the public one, by name. */
  private readonly suffixes = new Map<string, string>();

  constructor(readonly info: StackInfo) {
    this.ca = readFileSync(info.caFile, 'utf8');
    this.operator = new ClientSecretCredential(
      info.azure.tenantId,
      info.azure.operator.clientId,
      info.azure.operator.clientSecret,
      {
        authorityHost: info.azure.authorityHost,
        disableInstanceDiscovery: true,
      },
    );
  }

  get tenantId(): string {
    return this.info.azure.tenantId;
  }

  private admin(method: string, path: string, body?: unknown): Promise<unknown> {
    return adminCall(this.info.azure.adminUrl, this.info.azure.adminKey, this.ca, method, path, body);
  }

  /** `az keyvault create --enable-rbac-authorization` */
  async createVault(name: string, opts: { dnsSuffix?: string } = {}): Promise<string> {
    await this.admin('POST', '/vaults', { name, ...opts });
    if (opts.dnsSuffix) this.suffixes.set(name, opts.dnsSuffix);
    return vaultUrl(name, opts.dnsSuffix);
  }

  updateVault(name: string, settings: VaultSettings): Promise<unknown> {
    return this.admin('PATCH', `/vaults/${encodeURIComponent(name)}`, settings);
  }

  /** `az identity create`; with a secret, `az ad sp create-for-rbac` (a service principal). */
  createIdentity(name: string, clientSecret?: string): Promise<Omit<Identity, 'clientSecret'>> {
    return this.admin('POST', '/identities', { name, ...(clientSecret ? { clientSecret } : {}) }) as Promise<Identity>;
  }

  /**
   * A node's managed identities (`az vmss identity assign`): a system-assigned one and the attached
   * user-assigned ones. One configuration serves both protocols: App Service's at `endpoint`
   * (IDENTITY_ENDPOINT, with IDENTITY_HEADER `header`) and IMDS's at `imdsHost` (what an AKS node
   * uses; for AZURE_POD_IDENTITY_AUTHORITY_HOST, as 169.254.169.254 is out of reach here). `node`
   * names the node (its own IMDS port); test files that run at once each use their own.
   */
  async configureManagedIdentity(opts: {
    header: string;
    systemAssigned?: string;
    attached?: string[];
    node?: string;
  }): Promise<{ endpoint: string; imdsHost: string }> {
    const { imdsPort } = (await this.admin('PUT', '/msi', opts)) as { imdsPort: number };
    return { endpoint: `${this.info.azure.authorityHost}/msi/token`, imdsHost: `http://127.0.0.1:${imdsPort}` };
  }

  /** `az identity federated-credential create` */
  addFederatedCredential(
    identity: string,
    fic: { name: string; issuer: string; subject: string; audiences?: string[] },
  ): Promise<FederatedCredential> {
    return this.admin(
      'POST',
      `/identities/${encodeURIComponent(identity)}/federated-credentials`,
      fic,
    ) as Promise<FederatedCredential>;
  }

  /**
   * An identity federated with a Kubernetes ServiceAccount (`az identity create` + `az identity
   * federated-credential create --issuer <cluster issuer> --subject system:serviceaccount:<ns>:<sa>`).
   */
  async createWorkloadIdentity(o: {
    name: string;
    issuer: string;
    namespace: string;
    serviceAccount: string;
  }): Promise<Omit<Identity, 'clientSecret'>> {
    const identity = await this.createIdentity(o.name);
    await this.addFederatedCredential(identity.clientId, {
      name: o.serviceAccount,
      issuer: o.issuer,
      subject: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
    });
    return identity;
  }

  /** `az role assignment create --role … --assignee … --scope <vault>` */
  assignRole(role: KeyVaultRole, assignee: string, vaultName: string): Promise<RoleAssignment> {
    return this.admin('POST', '/role-assignments', {
      role,
      assignee,
      scope: KEYVAULT_SCOPE_PREFIX + vaultName,
    }) as Promise<RoleAssignment>;
  }

  /** https://<account>.queue.core.windows.net/<queue>: what the provider is given (the real URL shape). */
  queueUrl(queue: string): string {
    return `${this.info.azure.queue.serviceUrl}/${queue}`;
  }

  /** A client with the account key: for the tests' own look at a queue, never for the product. */
  queueAdmin(queue: string): QueueClient {
    const { account, accountKey } = this.info.azure.queue;
    return new QueueClient(this.queueUrl(queue), new StorageSharedKeyCredential(account, accountKey));
  }

  /** `az storage queue create` */
  async createQueue(queue: string): Promise<string> {
    await this.queueAdmin(queue).createIfNotExists();
    return this.queueUrl(queue);
  }

  /**
   * `az role assignment create --role "Storage Queue Data Message Processor" --assignee … --scope
   * <storage account>[/queueServices/default/queues/<queue>]`
   */
  assignQueueRole(role: QueueRole, assignee: string, opts: { queue?: string } = {}): Promise<RoleAssignment> {
    const account = STORAGE_SCOPE_PREFIX + this.info.azure.queue.account;
    return this.admin('POST', '/role-assignments', {
      role,
      assignee,
      scope: opts.queue ? `${account}/queueServices/default/queues/${opts.queue}` : account,
    }) as Promise<RoleAssignment>;
  }

  /**
   * `az eventgrid system-topic event-subscription create --endpoint-type storagequeue`: from now on
   * the vault's events reach the queue (create it first). Returns the subscription's name, for
   * setEventDelivery.
   */
  async subscribeVaultEvents(o: {
    vault: string;
    queue: string;
    name?: string;
    includedEventTypes?: string[];
  }): Promise<string> {
    const sub = (await this.admin('POST', '/event-subscriptions', o)) as { name: string };
    return sub.name;
  }

  /** Delivery faults of one subscription: duplicates, hold (then release newest first), delay, drops. */
  setEventDelivery(subscription: string, knobs: EventDelivery): Promise<unknown> {
    return this.admin('PUT', `/event-subscriptions/${encodeURIComponent(subscription)}/delivery`, knobs);
  }

  /** Delivers the events held by `hold: true`, newest first; resolves once they are in the queue. */
  async releaseHeldEvents(subscription: string): Promise<number> {
    const r = (await this.admin('POST', `/event-subscriptions/${encodeURIComponent(subscription)}/release`)) as {
      released: number;
    };
    return r.released;
  }

  /** Writes `text` into the queue as is: a message that is not a Key Vault event. */
  injectQueueMessage(queue: string, text: string): Promise<unknown> {
    return this.admin('POST', `/queues/${encodeURIComponent(queue)}/messages`, { text });
  }

  /** The queue's approximate message count (Get Queue Metadata). */
  async queueLength(queue: string): Promise<number> {
    return (await this.queueAdmin(queue).getProperties()).approximateMessagesCount ?? 0;
  }

  /**
   * The guide's identity setup in one call: an identity federated with the ServiceAccount (this
   * stack's issuer) that may read the vault's secrets; its client id.
   */
  async workloadReader(o: { name: string; vault: string; namespace: string; serviceAccount: string }): Promise<string> {
    const { clientId } = await this.createIdentity(o.name);
    await this.addFederatedCredential(clientId, {
      name: 'fic',
      issuer: this.info.k8s.issuer,
      subject: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
    });
    await this.assignRole('Key Vault Secrets User', clientId, o.vault);
    return clientId;
  }

  /** Test knob: how long Entra's access tokens for this client id live (real Entra: about an hour). */
  setAccessTokenLifetime(clientId: string, seconds: number): Promise<unknown> {
    return this.admin('PUT', '/access-token-lifetime', { clientId, seconds });
  }

  removeRoleAssignments(assignee: string): Promise<unknown> {
    return this.admin('DELETE', `/role-assignments?assignee=${encodeURIComponent(assignee)}`);
  }

  stats(): Promise<{
    vaultRequests: Record<string, number>;
    tokenRequests: {
      clientId: string;
      outcome: string;
      grant: string;
      assertionJti?: string;
      endpoint?: 'appService' | 'imds';
    }[];
    /** Requests the queue front refused, by storage error code. */
    queueRefusals: Record<string, number>;
    /** Per event subscription: events published to it, delivered (copies count), dropped, failed, held. */
    eventSubscriptions: Record<
      string,
      { published: number; delivered: number; dropped: number; failed: number; held: number }
    >;
  }> {
    return this.admin('GET', '/stats') as Promise<never>;
  }

  injectFault(f: {
    target: 'vault' | 'entra';
    pathPattern: string;
    status: number;
    count?: number;
    retryAfterSeconds?: number;
    delayMs?: number;
    clientId?: string;
  }): Promise<unknown> {
    return this.admin('POST', '/faults', f);
  }

  clearFaults(): Promise<unknown> {
    return this.admin('DELETE', '/faults');
  }

  secrets(vault: string): SecretClient {
    return new SecretClient(vaultUrl(vault, this.suffixes.get(vault)), this.operator);
  }

  keys(vault: string): KeyClient {
    return new KeyClient(vaultUrl(vault, this.suffixes.get(vault)), this.operator);
  }

  certificates(vault: string): CertificateClient {
    return new CertificateClient(vaultUrl(vault, this.suffixes.get(vault)), this.operator);
  }

  /** `az keyvault secret set`; returns the new version. */
  async setSecret(vault: string, name: string, value: string, opts: { contentType?: string } = {}): Promise<string> {
    const s = await this.secrets(vault).setSecret(name, value, opts);
    return s.properties.version ?? '';
  }

  /** `az keyvault secret show --query id`: the version a read without a version returns. */
  async currentSecretVersion(vault: string, name: string): Promise<string> {
    const s = await this.secrets(vault).getSecret(name);
    return s.properties.version ?? '';
  }

  /** `az keyvault secret set-attributes --expires` */
  async setSecretExpiry(vault: string, secret: { name: string; version: string; expiresOn: Date }): Promise<void> {
    await this.secrets(vault).updateSecretProperties(secret.name, secret.version, { expiresOn: secret.expiresOn });
  }

  /** `az keyvault secret set-attributes --enabled false` */
  async disableSecretVersion(vault: string, name: string, version: string): Promise<void> {
    await this.secrets(vault).updateSecretProperties(name, version, { enabled: false });
  }

  /** `az keyvault certificate import`: PEM text (key + chain) or PKCS#12 bytes. */
  async importCertificate(
    vault: string,
    name: string,
    cert: { pem: string } | { pfx: Buffer; password?: string },
  ): Promise<{ version: string }> {
    const client = this.certificates(vault);
    const result =
      'pem' in cert
        ? await client.importCertificate(name, Buffer.from(cert.pem), {
            policy: { contentType: 'application/x-pem-file', issuerName: 'Unknown', subject: 'CN=imported' },
          })
        : await client.importCertificate(name, cert.pfx, {
            ...(cert.password ? { password: cert.password } : {}),
            policy: { contentType: 'application/x-pkcs12', issuerName: 'Unknown', subject: 'CN=imported' },
          });
    return { version: result.properties.version ?? '' };
  }

  /** `az keyvault key create --kty RSA|EC` */
  async createKey(
    vault: string,
    name: string,
    kind: { kty: 'RSA'; size?: 2048 | 3072 | 4096 } | { kty: 'EC'; curve?: 'P-256' | 'P-384' | 'P-521' },
  ): Promise<string> {
    const client = this.keys(vault);
    const key =
      kind.kty === 'RSA'
        ? await client.createRsaKey(name, { keySize: kind.size ?? 2048 })
        : await client.createEcKey(name, { curve: kind.curve ?? 'P-256' });
    return key.properties.version ?? '';
  }
}
