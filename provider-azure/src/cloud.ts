// Azure clouds: where Key Vault lives (DNS suffix) and where Entra ID answers (authority host).
import { errorCode, ProviderError } from '@secret-store-sync/proto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { PARAMETERS, providerError } from './messages.js';

export const CLOUD_NAMES = [
  'AzurePublicCloud',
  'AzureUSGovernmentCloud',
  'AzureChinaCloud',
  'AzureGermanCloud',
  'AzureStackCloud',
] as const;
export type CloudName = (typeof CLOUD_NAMES)[number];

export interface CloudEnvironment {
  name: string;
  keyVaultDnsSuffix: string;
  authorityHost: string;
}

const KNOWN: Record<Exclude<CloudName, 'AzureStackCloud'>, CloudEnvironment> = {
  AzurePublicCloud: {
    name: 'AzurePublicCloud',
    keyVaultDnsSuffix: 'vault.azure.net',
    authorityHost: 'https://login.microsoftonline.com',
  },
  AzureUSGovernmentCloud: {
    name: 'AzureUSGovernmentCloud',
    keyVaultDnsSuffix: 'vault.usgovcloudapi.net',
    authorityHost: 'https://login.microsoftonline.us',
  },
  AzureChinaCloud: {
    name: 'AzureChinaCloud',
    keyVaultDnsSuffix: 'vault.azure.cn',
    authorityHost: 'https://login.chinacloudapi.cn',
  },
  AzureGermanCloud: {
    name: 'AzureGermanCloud',
    keyVaultDnsSuffix: 'vault.microsoftazure.de',
    authorityHost: 'https://login.microsoftonline.de',
  },
};

export const KNOWN_AUTHORITY_HOSTS = new Set(Object.values(KNOWN).map((c) => c.authorityHost));

/** The cloud a Mount asked for, checked but not yet read (AzureStackCloud's file is read later, asynchronously). */
export type CloudChoice = { name: Exclude<CloudName, 'AzureStackCloud'> } | { name: 'AzureStackCloud'; file: string };

/** An AzureStackCloud environment file holds two URLs; anything bigger is not one. */
const MAX_ENV_FILE_BYTES = 64 * 1024;

/**
 * Checks `cloudName` (case-insensitive; empty means the provider's default). AzureStackCloud names
 * a JSON file (the go-autorest environment format) that must lie in the operator's `envDir`:
 * any tenant may write a SecretProviderClass, so no tenant may name an arbitrary file of the
 * provider's container.
 */
export function chooseCloud(cloudName: string, envFile: string, fallback: CloudName, envDir: string): CloudChoice {
  const wanted = cloudName || fallback;
  const name = CLOUD_NAMES.find((c) => c.toLowerCase() === wanted.toLowerCase());
  if (!name) throw providerError(PARAMETERS.unknownCloud({ cloudName, known: CLOUD_NAMES }));
  if (name !== 'AzureStackCloud') return { name };
  if (!envDir) throw providerError(PARAMETERS.stackCloudDisabled());
  if (!envFile) throw providerError(PARAMETERS.noCloudEnvFile({ dir: envDir }));
  const dir = resolve(envDir);
  const file = resolve(dir, envFile);
  if (!file.startsWith(dir + sep) || envFile.includes('\0'))
    throw providerError(PARAMETERS.cloudEnvFileOutside({ file: envFile, dir: envDir }));
  return { name, file };
}

/**
 * The endpoints of a chosen cloud. The AZURE_AUTHORITY_HOST environment variable, when set,
 * overrides the authority host, as it does for @azure/identity.
 */
export async function resolveCloud(choice: CloudChoice, envDir: string): Promise<CloudEnvironment> {
  const env = choice.name === 'AzureStackCloud' ? await readEnvFile(choice.file, envDir) : KNOWN[choice.name];
  const override = process.env.AZURE_AUTHORITY_HOST;
  return override ? { ...env, authorityHost: override.replace(/\/+$/, '') } : env;
}

/** Reads an environment file: inside the folder after links, a regular file, small, never blocking, never echoed. */
async function readEnvFile(file: string, envDir: string): Promise<CloudEnvironment> {
  const shown = `cloudEnvFileName '${file.slice(resolve(envDir).length + 1)}'`;
  let text: string;
  try {
    // A ConfigMap volume's files are links into a hidden folder of the same volume: judge the real path.
    const [real, realDir] = await Promise.all([realpath(file), realpath(envDir)]);
    if (!real.startsWith(realDir + sep)) throw providerError(PARAMETERS.cloudEnvLeadsOutside({ shown, dir: envDir }));
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw providerError(PARAMETERS.cloudEnvNotAFile({ shown }));
      if (st.size > MAX_ENV_FILE_BYTES)
        throw providerError(PARAMETERS.cloudEnvTooLarge({ shown, limit: MAX_ENV_FILE_BYTES }));
      const buf = Buffer.alloc(st.size);
      const { bytesRead } = await handle.read(buf, 0, st.size, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (e) {
    if (e instanceof ProviderError) throw e;
    throw providerError(PARAMETERS.cloudEnvUnreadable({ shown, code: errorCode(e) ?? 'error' }));
  }
  let raw: { keyVaultDNSSuffix?: unknown; activeDirectoryEndpoint?: unknown };
  try {
    raw = JSON.parse(text) as typeof raw;
  } catch {
    // The parser's message quotes the file; the file is the operator's, not the tenant's to see.
    throw providerError(PARAMETERS.cloudEnvNotJson({ shown }));
  }
  if (
    !raw ||
    typeof raw.keyVaultDNSSuffix !== 'string' ||
    typeof raw.activeDirectoryEndpoint !== 'string' ||
    !raw.keyVaultDNSSuffix ||
    !raw.activeDirectoryEndpoint
  ) {
    throw providerError(PARAMETERS.cloudEnvFields({ shown }));
  }
  return {
    name: 'AzureStackCloud',
    keyVaultDnsSuffix: raw.keyVaultDNSSuffix.replace(/^\./, ''),
    authorityHost: raw.activeDirectoryEndpoint.replace(/\/+$/, ''),
  };
}

export function vaultUrl(vaultName: string, cloud: CloudEnvironment): string {
  return `https://${vaultName}.${cloud.keyVaultDnsSuffix}/`;
}
