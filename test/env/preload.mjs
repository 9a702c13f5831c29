// Test-only preload (node --import): sends Key Vault host names to the local emulator and trusts
// the stack's CA, so product code keeps building real vault URLs (https://<name>.vault.azure.net/)
// and stays free of test branches. Reads its settings from the environment at connect time:
//   SSS_KEYVAULT_ADDR  127.0.0.1:<port> of the Key Vault emulator
//   SSS_STACK_CA       PEM file of the stack's CA (for processes started before it existed)
import { readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import tls from 'node:tls';

const VAULT_HOST = /\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)\.?$/i;
const original = tls.connect;
let caCache;

function stackCa() {
  const file = process.env.SSS_STACK_CA;
  if (!file) return undefined;
  if (caCache?.file !== file) caCache = { file, certs: [...tls.rootCertificates, readFileSync(file, 'utf8')] };
  return caCache.certs;
}

tls.connect = function connect(...args) {
  const [first] = args;
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    const opts = { ...first };
    const host = opts.host ?? opts.servername;
    const addr = process.env.SSS_KEYVAULT_ADDR;
    if (addr && typeof host === 'string' && VAULT_HOST.test(host) && (opts.port === undefined || Number(opts.port) === 443)) {
      const [ip, port] = addr.split(':');
      opts.servername ??= host;
      opts.host = ip;
      opts.port = Number(port);
      delete opts.lookup;
    }
    if (opts.ca === undefined) {
      const ca = stackCa();
      if (ca) opts.ca = ca;
    }
    args[0] = opts;
  }
  return original.apply(this, args);
};
syncBuiltinESMExports();
