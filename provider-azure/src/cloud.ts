// Azure clouds: where Key Vault lives (DNS suffix) and where Entra ID answers (authority host).
import { readFileSync } from 'node:fs';
import { ProviderError } from '@secret-store-sync/proto';

export const CLOUD_NAMES = ['AzurePublicCloud', 'AzureUSGovernmentCloud', 'AzureChinaCloud', 'AzureGermanCloud', 'AzureStackCloud'] as const;
export type CloudName = (typeof CLOUD_NAMES)[number];

export interface CloudEnvironment {
  name: string;
  keyVaultDnsSuffix: string;
  authorityHost: string;
}

const KNOWN: Record<Exclude<CloudName, 'AzureStackCloud'>, CloudEnvironment> = {
  AzurePublicCloud: { name: 'AzurePublicCloud', keyVaultDnsSuffix: 'vault.azure.net', authorityHost: 'https://login.microsoftonline.com' },
  AzureUSGovernmentCloud: { name: 'AzureUSGovernmentCloud', keyVaultDnsSuffix: 'vault.usgovcloudapi.net', authorityHost: 'https://login.microsoftonline.us' },
  AzureChinaCloud: { name: 'AzureChinaCloud', keyVaultDnsSuffix: 'vault.azure.cn', authorityHost: 'https://login.chinacloudapi.cn' },
  AzureGermanCloud: { name: 'AzureGermanCloud', keyVaultDnsSuffix: 'vault.microsoftazure.de', authorityHost: 'https://login.microsoftonline.de' },
};

export const KNOWN_AUTHORITY_HOSTS = new Set(Object.values(KNOWN).map((c) => c.authorityHost));

/**
 * Resolves `cloudName` (case-insensitive; empty means the provider's default). AzureStackCloud reads
 * its endpoints from the JSON file named by `cloudEnvFileName` (the go-autorest environment format).
 * The AZURE_AUTHORITY_HOST environment variable, when set, overrides the authority host, as it
 * does for @azure/identity.
 */
export function resolveCloud(cloudName: string, envFile: string, fallback: CloudName): CloudEnvironment {
  const wanted = cloudName || fallback;
  const name = CLOUD_NAMES.find((c) => c.toLowerCase() === wanted.toLowerCase());
  if (!name) throw new ProviderError('InvalidArgument', `cloudName '${cloudName}' is not one of ${CLOUD_NAMES.join(', ')}`);
  let env: CloudEnvironment;
  if (name === 'AzureStackCloud') {
    if (!envFile) throw new ProviderError('InvalidArgument', 'cloudName AzureStackCloud needs cloudEnvFileName: the path of a JSON file with keyVaultDNSSuffix and activeDirectoryEndpoint');
    let raw: { keyVaultDNSSuffix?: string; activeDirectoryEndpoint?: string; name?: string };
    try {
      raw = JSON.parse(readFileSync(envFile, 'utf8')) as typeof raw;
    } catch (e) {
      throw new ProviderError('InvalidArgument', `cloudEnvFileName '${envFile}' could not be read as JSON: ${(e as Error).message}`);
    }
    if (!raw.keyVaultDNSSuffix || !raw.activeDirectoryEndpoint) {
      throw new ProviderError('InvalidArgument', `cloudEnvFileName '${envFile}' must set keyVaultDNSSuffix and activeDirectoryEndpoint`);
    }
    env = { name, keyVaultDnsSuffix: raw.keyVaultDNSSuffix.replace(/^\./, ''), authorityHost: raw.activeDirectoryEndpoint.replace(/\/+$/, '') };
  } else {
    env = KNOWN[name];
  }
  const override = process.env.AZURE_AUTHORITY_HOST;
  return override ? { ...env, authorityHost: override.replace(/\/+$/, '') } : env;
}

export function vaultUrl(vaultName: string, cloud: CloudEnvironment): string {
  return `https://${vaultName}.${cloud.keyVaultDnsSuffix}/`;
}
