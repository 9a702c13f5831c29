// Test-only preload (node --import): sends Key Vault host names to the local emulator and the
// stack's storage account (https://<account>.queue.core.windows.net) to its queue front, and trusts
// the stack's CA, so product code keeps building real vault and queue URLs and stays free of test
// branches. Reads its settings from the environment at connect time:
//   SSS_KEYVAULT_ADDR  127.0.0.1:<port> of the Key Vault emulator
//   SSS_STACK_CA       PEM file of the stack's CA (for processes started before it existed)
//   SSS_KEYVAULT_HOSTS JSON file listing the host names of the vaults that exist; any other vault
//                      host fails to resolve (ENOTFOUND), as a misspelt vault name does in real DNS
//   SSS_QUEUE_ADDR     127.0.0.1:<port> of the queue front (test/env/azure/queue-front.ts)
//   SSS_QUEUE_HOST     the storage account's queue host; any other *.queue.core.windows.net fails
//                      to resolve, as an account that does not exist does
import { readFileSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import tls from 'node:tls';

const VAULT_HOST = /\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net|microsoftazure\.de)\.?$/i;
const QUEUE_HOST = /\.queue\.core\.windows\.net\.?$/i;
const original = tls.connect;
let caCache;
let hostsCache;

/** The vault hosts that exist, re-read when the emulator rewrites the file; undefined = no list (all resolve). */
function knownVaultHosts() {
  const file = process.env.SSS_KEYVAULT_HOSTS;
  if (!file) return undefined;
  let mtime;
  try {
    // A new file (new inode) replaces the old one on every change.
    const st = statSync(file);
    mtime = `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return new Set(); // no vault created yet
  }
  if (hostsCache?.file !== file || hostsCache.mtime !== mtime) {
    hostsCache = { file, mtime, hosts: new Set(JSON.parse(readFileSync(file, 'utf8')).map((h) => h.toLowerCase())) };
  }
  return hostsCache.hosts;
}

/** A lookup that fails the way getaddrinfo does for a name that does not exist. */
function notFound(hostname, _options, callback) {
  const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: 'ENOTFOUND',
    errno: -3008,
    syscall: 'getaddrinfo',
    hostname,
  });
  process.nextTick(callback, err);
}

// The CA file node itself read at start (NODE_EXTRA_CA_CERTS is read once, before any preload).
const trustedAtStart = process.env.NODE_EXTRA_CA_CERTS;

/**
 * The stack CA to add to a connection, or undefined when the process trusts it already. A process
 * started with NODE_EXTRA_CA_CERTS naming it (the provider and manager the tests start) must not get
 * a `ca` list: that makes node build a new SecureContext and parse every root certificate for each
 * TLS connection, which cost provider-azure about 20 MB of RSS in bench/provider-memory.ts — memory
 * the product, which trusts its CAs the same way, never spends.
 */
function stackCa() {
  const file = process.env.SSS_STACK_CA;
  if (!file || file === trustedAtStart) return undefined;
  if (caCache?.file !== file) caCache = { file, certs: [...tls.rootCertificates, readFileSync(file, 'utf8')] };
  return caCache.certs;
}

/** Points a connection at `addr` (ip:port), keeping the real host name for SNI and the certificate check. */
function sendTo(opts, host, addr) {
  const [ip, port] = addr.split(':');
  opts.servername ??= host;
  opts.host = ip;
  opts.port = Number(port);
  delete opts.lookup;
}

/** Routes a connection to a vault or the storage account to its stand-in, or fails its DNS lookup. */
function route(opts) {
  const host = opts.host ?? opts.servername;
  if (typeof host !== 'string') return;
  const name = host.toLowerCase().replace(/\.$/, '');
  const defaultPort = opts.port === undefined || Number(opts.port) === 443;
  if (VAULT_HOST.test(name)) {
    const known = knownVaultHosts();
    if (known && !known.has(name)) opts.lookup = notFound;
    else if (process.env.SSS_KEYVAULT_ADDR && defaultPort) sendTo(opts, host, process.env.SSS_KEYVAULT_ADDR);
  } else if (QUEUE_HOST.test(name) && process.env.SSS_QUEUE_HOST) {
    if (name !== process.env.SSS_QUEUE_HOST || !defaultPort) opts.lookup = notFound;
    else sendTo(opts, host, process.env.SSS_QUEUE_ADDR ?? '');
  }
}

tls.connect = function connect(...args) {
  const [first] = args;
  if (first && typeof first === 'object' && !Array.isArray(first)) {
    const opts = { ...first };
    route(opts);
    if (opts.ca === undefined) {
      const ca = stackCa();
      if (ca) opts.ca = ca;
    }
    args[0] = opts;
  }
  return original.apply(this, args);
};
syncBuiltinESMExports();
