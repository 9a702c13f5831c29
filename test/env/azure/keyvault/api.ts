// The Key Vault data-plane REST API (secrets, keys, certificates) over the in-memory store, behind
// Key Vault's authentication (bearer challenge, access-token validation) and Azure RBAC.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Directory } from '../directory.js';
import { Faults, readBody, sendJson } from '../http.js';
import { PEM_TYPE, PFX_TYPE, backingSecretValue, describeLeaf, parseImport } from './certs.js';
import { writeFileSync, renameSync } from 'node:fs';
import {
  KvError,
  Vault,
  newVersionId,
  nowS,
  type Attributes,
  type CertificateData,
  type Collection,
  type Entry,
  type KeyData,
  type Kind,
  type SecretData,
  type Version,
} from './store.js';

/** DNS suffixes of Key Vault in the clouds the provider knows. */
export const VAULT_SUFFIXES = [
  'vault.azure.net',
  'vault.azure.cn',
  'vault.usgovcloudapi.net',
  'vault.microsoftazure.de',
];
const API_VERSIONS = new Set(['7.0', '7.1', '7.2', '7.3', '7.4', '7.5', '7.6', '2025-07-01']);
/**
 * The resource a vault's challenge names and its access tokens must be for: the cloud's own
 * (`https://vault.azure.cn` in Azure China). @azure/keyvault-common 2.1.0
 * (keyVaultAuthenticationPolicy.js, verifyChallengeResource) refuses a challenge whose resource is
 * not a domain suffix of the vault's host, so one hard-coded resource fails every sovereign cloud.
 */
export function resourceOf(dnsSuffix: string): string {
  return `https://${dnsSuffix}`;
}
/** Key Vault's service limits count GET/LIST per vault in 10 s windows. */
const THROTTLE_WINDOW_MS = 10_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Caller {
  principalId: string;
  appId: string;
}

interface Ctx {
  vault: Vault;
  base: string; // https://host[:port] as the client addressed it
  caller: Caller;
}

export interface KeyVaultOptions {
  directory: Directory;
  authorityHost: () => string;
  accessTokenKeys: () => JSONWebKeySet;
  extraSuffixes?: string[];
  /**
   * Where the host names of the vaults that exist are written (a JSON array), so the test preload
   * resolves only those: a misspelt vault name is a DNS failure on the real service, not a 404.
   */
  hostsFile?: string;
  /** Called after each write that makes a new version (set, create, import): Key Vault's events. */
  onNewVersion?: (vault: Vault, kind: Kind, name: string) => void;
}

/** The operations that make a new version, and of what. */
const NEW_VERSION_OPS: Record<string, Kind> = {
  'secrets/set': 'secrets',
  'keys/create': 'keys',
  'certificates/import': 'certificates',
};

export class KeyVaultEmulator {
  readonly vaults = new Map<string, Vault>();
  readonly faults = new Faults();
  /** Requests answered, by vault and operation (e.g. `my-kv secrets/get 200`). */
  readonly counts = new Map<string, number>();
  private readonly recent = new Map<string, number[]>();

  constructor(private readonly opts: KeyVaultOptions) {}

  createVault(name: string, tenantId: string, dnsSuffix = VAULT_SUFFIXES[0]!): Vault {
    if (!/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/.test(name) || name.includes('--')) {
      throw new KvError(
        400,
        'VaultNameNotValid',
        `Vault name '${name}' is invalid: 3-24 characters, letters, digits and single hyphens, starting with a letter.`,
      );
    }
    if (![...VAULT_SUFFIXES, ...(this.opts.extraSuffixes ?? [])].includes(dnsSuffix))
      throw new KvError(400, 'BadParameter', `Unknown Key Vault DNS suffix '${dnsSuffix}'.`);
    // A vault belongs to a tenant known by its GUID, which Key Vault writes in lowercase (the
    // challenges in the SDKs' recorded test sessions; real-azure-behaviour.md).
    if (!GUID.test(tenantId)) throw new KvError(400, 'BadParameter', `A vault's tenant is a GUID, not '${tenantId}'.`);
    const key = name.toLowerCase();
    const v = this.vaults.get(key) ?? new Vault(key, tenantId.toLowerCase(), dnsSuffix);
    this.vaults.set(key, v);
    this.writeHosts();
    return v;
  }

  private writeHosts(): void {
    const file = this.opts.hostsFile;
    if (!file) return;
    writeFileSync(`${file}.tmp`, JSON.stringify([...this.vaults.values()].map((v) => v.host)));
    renameSync(`${file}.tmp`, file);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = (req.headers.host ?? '').toLowerCase();
    const url = new URL(req.url ?? '/', `https://${host}`);
    const hostname = host.replace(/:\d+$/, '');
    const suffix = [...VAULT_SUFFIXES, ...(this.opts.extraSuffixes ?? [])].find((s) => hostname.endsWith(`.${s}`));
    const vaultName = suffix ? hostname.slice(0, -suffix.length - 1) : '';
    let op = 'unknown';
    let status = 500;
    try {
      const found = this.vaults.get(vaultName);
      const vault = found?.dnsSuffix === suffix ? found : undefined;
      // Unreachable through the test preload, which fails such names in DNS as the real service does.
      if (!vault) throw new KvError(404, 'VaultNotFound', `No vault is registered for host '${hostname}'.`);
      const route = matchRoute(req.method ?? 'GET', url.pathname);
      op = route.op;
      const apiVersion = url.searchParams.get('api-version');
      if (!apiVersion || !API_VERSIONS.has(apiVersion)) {
        throw new KvError(
          400,
          'BadParameter',
          `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (2025-07-01).`,
        );
      }
      const caller = await this.authenticate(req, vault, res);
      if (!caller) {
        status = 401;
        return;
      }
      this.checkNetwork(caller, vault);
      this.authorize(caller, vault, route.action);
      const fault = this.faults.take(url.pathname);
      if (fault) {
        if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
        const headers: Record<string, string> =
          fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        throw Object.assign(
          new KvError(fault.status, fault.status === 429 ? 'Throttled' : 'InternalServerError', 'Injected fault.'),
          { headers },
        );
      }
      if (route.read) this.throttle(vault);
      const body = ['PUT', 'POST', 'PATCH'].includes(req.method ?? '') ? parseJson(await readBody(req)) : {};
      const ctx: Ctx = { vault, base: `https://${host}`, caller };
      const result = route.run(this, ctx, route.params, body, url);
      const made = NEW_VERSION_OPS[route.op];
      if (made) this.opts.onNewVersion?.(vault, made, route.params.name!);
      status = 200;
      sendJson(res, 200, result);
    } catch (err) {
      const e =
        err instanceof KvError ? err : new KvError(500, 'InternalServerError', String((err as Error)?.stack ?? err));
      status = e.status;
      const headers = (err as { headers?: Record<string, string> }).headers ?? {};
      sendJson(
        res,
        e.status,
        { error: { code: e.code, message: e.message, ...(e.innerCode ? { innererror: { code: e.innerCode } } : {}) } },
        headers,
      );
    } finally {
      const k = `${vaultName || '-'} ${op} ${status}`;
      this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    }
  }

  private async authenticate(req: IncomingMessage, vault: Vault, res: ServerResponse): Promise<Caller | undefined> {
    const resource = resourceOf(vault.dnsSuffix);
    // Real Key Vault's challenge names the vault's tenant, as a lowercase GUID, and the cloud's own
    // resource: `Bearer authorization="https://login.windows.net/<tenant>", resource="https://vault.azure.net"`
    // (the SDKs' recorded test sessions; real-azure-behaviour.md). The SDK takes only the tenant from
    // `authorization`, the URL's path (@azure/keyvault-common parseWWWAuthenticate), and asks the
    // credential for a token of that tenant: so a wrong tenantID shows. The host here is the Entra
    // stand-in's, which the SDK does not read.
    const challenge = `Bearer authorization="${this.opts.authorityHost()}/${vault.tenantId}", resource="${resource}"`;
    const auth = req.headers.authorization ?? '';
    if (!auth) {
      // The SDK's first request carries no token and no body; it learns tenant and scope from this.
      req.resume();
      sendJson(
        res,
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        { 'www-authenticate': challenge },
      );
      return undefined;
    }
    const token = /^Bearer (.+)$/i.exec(auth)?.[1];
    const fail = (message: string): never => {
      throw Object.assign(new KvError(401, 'Unauthorized', message), { headers: { 'www-authenticate': challenge } });
    };
    if (!token) return fail('AKV10000: Request is missing a Bearer or PoP token.');
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(this.opts.accessTokenKeys()), {
        clockTolerance: 300,
      });
      if (payload.aud !== resource && !(Array.isArray(payload.aud) && payload.aud.includes(resource))) {
        return fail(`AKV10022: Invalid audience. Expected ${resource}, found: ${String(payload.aud)}.`);
      }
      if (payload.tid !== vault.tenantId || payload.iss !== `https://sts.windows.net/${vault.tenantId}/`) {
        return fail(
          `AKV10032: Invalid issuer. Expected one of https://sts.windows.net/${vault.tenantId}/, found ${String(payload.iss)}.`,
        );
      }
      return { principalId: String(payload.oid), appId: String(payload.appid) };
    } catch (e) {
      if (e instanceof KvError) throw e;
      const code = (e as { code?: string }).code;
      return fail(
        code === 'ERR_JWT_EXPIRED'
          ? 'AKV10013: Token has expired.'
          : `AKV10004: The token could not be validated (${code ?? 'invalid'}).`,
      );
    }
  }

  /**
   * Network rules come after authentication: the real messages name the caller. Shapes from real
   * responses: ForbiddenByConnection (microsoft/multimodal-ai#171,
   * Azure/secrets-store-csi-driver-provider-azure#873), ForbiddenByFirewall (microsoft/AzureTRE#3789).
   */
  private checkNetwork(caller: Caller, vault: Vault): void {
    const who = `Caller: appid=${caller.appId};oid=${caller.principalId};iss=https://sts.windows.net/${vault.tenantId}/\r\nVault: ${vault.name};location=local`;
    if (vault.settings.network === 'privateLinkOnly') {
      throw new KvError(
        403,
        'Forbidden',
        `Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\n${who}`,
        'ForbiddenByConnection',
      );
    }
    if (vault.settings.network === 'firewall') {
      throw new KvError(
        403,
        'Forbidden',
        `Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\n${who}`,
        'ForbiddenByFirewall',
      );
    }
  }

  private authorize(caller: Caller, vault: Vault, action: string): void {
    if (this.opts.directory.allowed(caller.principalId, vault.name, action)) return;
    throw new KvError(
      403,
      'Forbidden',
      `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${caller.appId};oid=${caller.principalId}\r\nAction: 'Microsoft.KeyVault/vaults/${action}'\r\nResource: '/providers/microsoft.keyvault/vaults/${vault.name}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\nVault: ${vault.name};location=local\r\n`,
      'ForbiddenByRbac',
    );
  }

  /**
   * Key Vault's own throttling. By default without Retry-After, as in the real 429 logged with all
   * its headers in vcsjones/AzureSignTool#219 (Microsoft's throttling guidance tells clients to
   * back off exponentially themselves); `settings.throttleRetryAfter` adds the header.
   */
  private throttle(vault: Vault): void {
    const now = Date.now();
    const window = (this.recent.get(vault.name) ?? []).filter((t) => now - t < THROTTLE_WINDOW_MS);
    if (window.length >= vault.settings.throttleLimit) {
      this.recent.set(vault.name, window);
      const retry = Math.max(Math.ceil((THROTTLE_WINDOW_MS - (now - window[0]!)) / 1000), 1);
      throw Object.assign(
        new KvError(
          429,
          'Throttled',
          'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached',
        ),
        {
          headers: vault.settings.throttleRetryAfter ? { 'retry-after': String(retry) } : {},
        },
      );
    }
    window.push(now);
    this.recent.set(vault.name, window);
  }
}

// ---------- routes ----------

type Params = Record<string, string>;
type Body = Record<string, unknown>;
interface Route {
  method: string;
  pattern: RegExp;
  op: string;
  action: string;
  read: boolean;
  run: (kv: KeyVaultEmulator, ctx: Ctx, p: Params, body: Body, url: URL) => unknown;
}

const NAME = '(?<name>[0-9a-zA-Z-]+)';
const VER = '(?<version>[0-9a-zA-Z]*)';
const OPT_VER = `(?:/${VER})?/?`;
const routes: Route[] = [
  r('GET', `/secrets/?`, 'secrets/list', 'secrets/readMetadata/action', true, (_kv, c, _p, _b, u) =>
    list(c, 'secrets', c.vault.secrets.names(), (e) => secretItem(c, e.name, e.versions.at(-1)!), u),
  ),
  r('GET', `/secrets/${NAME}/versions`, 'secrets/versions', 'secrets/readMetadata/action', true, (_kv, c, p, _b, u) =>
    list(c, `secrets/${p.name}/versions`, c.vault.secrets.listed(p.name!), (v) => secretItem(c, p.name!, v), u),
  ),
  r('GET', `/secrets/${NAME}${OPT_VER}`, 'secrets/get', 'secrets/getSecret/action', true, (_kv, c, p) =>
    getSecret(c, p.name!, p.version || undefined),
  ),
  r('PUT', `/secrets/${NAME}/?`, 'secrets/set', 'secrets/setSecret/action', false, (_kv, c, p, b) =>
    setSecret(c, p.name!, b),
  ),
  r('PATCH', `/secrets/${NAME}/${VER}/?`, 'secrets/update', 'secrets/setSecret/action', false, (_kv, c, p, b) =>
    updateVersion(c.vault.secrets, p.name!, p.version!, b, (v) => secretBundle(c, p.name!, v, false)),
  ),
  r('DELETE', `/secrets/${NAME}/?`, 'secrets/delete', 'secrets/delete', false, (_kv, c, p) =>
    deletedBundle(c, 'secrets', c.vault.secrets.delete(p.name!), (v) => secretBundle(c, p.name!, v, false)),
  ),
  r('GET', `/deletedsecrets/${NAME}/?`, 'deletedsecrets/get', 'secrets/readMetadata/action', true, (_kv, c, p) =>
    deletedBundle(c, 'secrets', c.vault.secrets.getDeleted(p.name!), (v) => secretBundle(c, p.name!, v, false)),
  ),
  r(
    'DELETE',
    `/deletedsecrets/${NAME}/?`,
    'deletedsecrets/purge',
    'secrets/purge/action',
    false,
    (_kv, c, p) => (c.vault.secrets.purge(p.name!), {}),
  ),
  r('POST', `/deletedsecrets/${NAME}/recover`, 'deletedsecrets/recover', 'secrets/recover/action', false, (_kv, c, p) =>
    secretBundle(c, p.name!, c.vault.secrets.recover(p.name!).versions.at(-1)!, false),
  ),

  r('GET', `/keys/?`, 'keys/list', 'keys/read', true, (_kv, c, _p, _b, u) =>
    list(c, 'keys', c.vault.keys.names(), (e) => keyItem(c, e.name, e.versions.at(-1)!), u),
  ),
  r('GET', `/keys/${NAME}/versions`, 'keys/versions', 'keys/read', true, (_kv, c, p, _b, u) =>
    list(c, `keys/${p.name}/versions`, c.vault.keys.listed(p.name!), (v) => keyItem(c, p.name!, v), u),
  ),
  r('POST', `/keys/${NAME}/create`, 'keys/create', 'keys/create/action', false, (_kv, c, p, b) =>
    createKey(c, p.name!, b),
  ),
  r('GET', `/keys/${NAME}${OPT_VER}`, 'keys/get', 'keys/read', true, (_kv, c, p) =>
    keyBundle(c, p.name!, c.vault.keys.get(p.name!, p.version || undefined)),
  ),
  r('PATCH', `/keys/${NAME}/${VER}/?`, 'keys/update', 'keys/update/action', false, (_kv, c, p, b) =>
    updateVersion(c.vault.keys, p.name!, p.version!, b, (v) => keyBundle(c, p.name!, v)),
  ),
  r('DELETE', `/keys/${NAME}/?`, 'keys/delete', 'keys/delete', false, (_kv, c, p) =>
    deletedBundle(c, 'keys', c.vault.keys.delete(p.name!), (v) => keyBundle(c, p.name!, v)),
  ),
  r('GET', `/deletedkeys/${NAME}/?`, 'deletedkeys/get', 'keys/read', true, (_kv, c, p) =>
    deletedBundle(c, 'keys', c.vault.keys.getDeleted(p.name!), (v) => keyBundle(c, p.name!, v)),
  ),
  r(
    'DELETE',
    `/deletedkeys/${NAME}/?`,
    'deletedkeys/purge',
    'keys/purge/action',
    false,
    (_kv, c, p) => (c.vault.keys.purge(p.name!), {}),
  ),

  r('GET', `/certificates/?`, 'certificates/list', 'certificates/read', true, (_kv, c, _p, _b, u) =>
    list(c, 'certificates', c.vault.certificates.names(), (e) => certItem(c, e.name, e.versions.at(-1)!), u),
  ),
  r('GET', `/certificates/${NAME}/versions`, 'certificates/versions', 'certificates/read', true, (_kv, c, p, _b, u) =>
    list(c, `certificates/${p.name}/versions`, c.vault.certificates.listed(p.name!), (v) => certItem(c, p.name!, v), u),
  ),
  r(
    'POST',
    `/certificates/${NAME}/import`,
    'certificates/import',
    'certificates/import/action',
    false,
    (_kv, c, p, b) => importCertificate(c, p.name!, b),
  ),
  r('GET', `/certificates/${NAME}/policy`, 'certificates/policy', 'certificates/read', true, (_kv, c, p) =>
    certPolicy(c, p.name!, c.vault.certificates.get(p.name!).data),
  ),
  r('GET', `/certificates/${NAME}${OPT_VER}`, 'certificates/get', 'certificates/read', true, (_kv, c, p) =>
    certBundle(c, p.name!, c.vault.certificates.get(p.name!, p.version || undefined)),
  ),
  r(
    'PATCH',
    `/certificates/${NAME}/${VER}/?`,
    'certificates/update',
    'certificates/update/action',
    false,
    (_kv, c, p, b) => updateCertificate(c, p.name!, p.version!, b),
  ),
  r('DELETE', `/certificates/${NAME}/?`, 'certificates/delete', 'certificates/delete', false, (_kv, c, p) =>
    deleteCertificate(c, p.name!),
  ),
  r('GET', `/deletedcertificates/${NAME}/?`, 'deletedcertificates/get', 'certificates/read', true, (_kv, c, p) =>
    deletedBundle(c, 'certificates', c.vault.certificates.getDeleted(p.name!), (v) => certBundle(c, p.name!, v)),
  ),
];

function r(method: string, path: string, op: string, action: string, read: boolean, run: Route['run']): Route {
  return { method, pattern: new RegExp(`^${path}$`), op, action, read, run };
}

function matchRoute(method: string, path: string): Route & { params: Params } {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    const params: Params = {};
    for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v ?? '');
    return { ...route, params };
  }
  throw new KvError(404, 'NotFound', `No operation ${method} ${path}.`);
}

function parseJson(text: string): Body {
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Body;
  } catch {
    /* fall through */
  }
  throw new KvError(400, 'BadParameter', 'The request body is not a JSON object.');
}

// ---------- shapes ----------

const RECOVERY = { recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 };

function attrs(a: Attributes, extra: Record<string, unknown> = {}) {
  return {
    enabled: a.enabled,
    ...(a.nbf ? { nbf: a.nbf } : {}),
    ...(a.exp ? { exp: a.exp } : {}),
    created: a.created,
    updated: a.updated,
    ...RECOVERY,
    ...extra,
  };
}

function list<T>(c: Ctx, path: string, all: T[], item: (x: T) => unknown, url: URL) {
  const max = Math.min(Math.max(Number(url.searchParams.get('maxresults') ?? 25) || 25, 1), 25);
  const skip = Number(url.searchParams.get('$skiptoken') ?? 0) || 0;
  const page = all.slice(skip, skip + max);
  const next =
    skip + max < all.length
      ? `${c.base}/${path}?api-version=${url.searchParams.get('api-version')}&maxresults=${max}&$skiptoken=${skip + max}`
      : null;
  return { value: page.map(item), nextLink: next };
}

function secretItem(c: Ctx, name: string, v: Version<SecretData>) {
  return {
    id: `${c.base}/secrets/${name}/${v.version}`,
    attributes: attrs(v.attributes),
    ...(v.tags ? { tags: v.tags } : {}),
    ...(v.data.contentType ? { contentType: v.data.contentType } : {}),
    ...(v.data.managedBy ? { managed: true } : {}),
  };
}

function secretBundle(c: Ctx, name: string, v: Version<SecretData>, withValue: boolean) {
  return {
    ...(withValue ? { value: v.data.value } : {}),
    ...secretItem(c, name, v),
    ...(v.data.managedBy ? { kid: `${c.base}/keys/${name}/${v.data.managedBy.keyVersion}` } : {}),
  };
}

function getSecret(c: Ctx, name: string, version: string | undefined) {
  const v = c.vault.secrets.get(name, version);
  if (!v.attributes.enabled)
    throw new KvError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
  return secretBundle(c, name, v, true);
}

function setSecret(c: Ctx, name: string, b: Body) {
  if (typeof b.value !== 'string')
    throw new KvError(400, 'BadParameter', "Property 'value' is required and must be a string.");
  if (Buffer.byteLength(b.value) > 25 * 1024)
    throw new KvError(400, 'BadParameter', 'A secret value is limited to 25 KB.');
  const existing = safe(() => c.vault.secrets.get(name));
  if (existing?.data.managedBy)
    throw new KvError(403, 'Forbidden', `Secret ${name} is managed by a certificate and cannot be set directly.`);
  const a = (b.attributes ?? {}) as Partial<Attributes>;
  const v = c.vault.secrets.add(
    name,
    { value: b.value, ...(typeof b.contentType === 'string' ? { contentType: b.contentType } : {}) },
    { ...pickAttrs(a), ...(isTags(b.tags) ? { tags: b.tags } : {}) },
  );
  return secretBundle(c, name, v, true);
}

function updateVersion<T, R>(
  col: Collection<T>,
  name: string,
  version: string,
  b: Body,
  render: (v: Version<T>) => R,
): R {
  const v = col.get(name, version || undefined);
  const a = (b.attributes ?? {}) as Partial<Attributes>;
  if (typeof a.enabled === 'boolean') v.attributes.enabled = a.enabled;
  if (typeof a.nbf === 'number') v.attributes.nbf = a.nbf;
  if (typeof a.exp === 'number') v.attributes.exp = a.exp;
  if (isTags(b.tags)) v.tags = b.tags;
  if (typeof b.contentType === 'string' && col.kind === 'secrets') (v.data as SecretData).contentType = b.contentType;
  v.attributes.updated = nowS();
  return render(v);
}

function deletedBundle<T>(c: Ctx, kind: string, e: Entry<T>, render: (v: Version<T>) => object) {
  const latest = e.versions.at(-1)!;
  return {
    ...render(latest),
    recoveryId: `${c.base}/deleted${kind}/${e.name}`,
    deletedDate: e.deleted?.deletedDate,
    scheduledPurgeDate: e.deleted?.scheduledPurgeDate,
  };
}

function keyJwk(c: Ctx, name: string, v: Version<KeyData>) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = v.data.privateJwk as Record<string, unknown>;
  return { kid: `${c.base}/keys/${name}/${v.version}`, ...pub, kty: v.data.kty, key_ops: v.data.keyOps };
}

function keyItem(c: Ctx, name: string, v: Version<KeyData>) {
  return {
    kid: `${c.base}/keys/${name}/${v.version}`,
    attributes: attrs(v.attributes, { exportable: false }),
    ...(v.tags ? { tags: v.tags } : {}),
    ...(v.data.managed ? { managed: true } : {}),
  };
}

function keyBundle(c: Ctx, name: string, v: Version<KeyData>) {
  const { kid: _kid, ...item } = keyItem(c, name, v);
  return { key: keyJwk(c, name, v), ...item };
}

const CURVES: Record<string, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
  'P-256K': 'secp256k1',
};

function createKey(c: Ctx, name: string, b: Body) {
  const kty = String(b.kty ?? '');
  let key: KeyObject;
  if (kty === 'RSA' || kty === 'RSA-HSM') {
    const size = Number(b.key_size ?? 2048);
    if (![2048, 3072, 4096].includes(size))
      throw new KvError(400, 'BadParameter', `Invalid key size ${size}; RSA keys are 2048, 3072 or 4096 bits.`);
    key = generateKeyPairSync('rsa', { modulusLength: size }).privateKey;
  } else if (kty === 'EC' || kty === 'EC-HSM') {
    const crv = String(b.crv ?? 'P-256');
    const named = CURVES[crv];
    if (!named) throw new KvError(400, 'BadParameter', `Unsupported curve ${crv}.`);
    key = generateKeyPairSync('ec', { namedCurve: named }).privateKey;
  } else {
    throw new KvError(400, 'BadParameter', `Unsupported key type '${kty}'; use RSA, RSA-HSM, EC or EC-HSM.`);
  }
  const defaultOps = kty.startsWith('RSA')
    ? ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']
    : ['sign', 'verify'];
  const keyOps = Array.isArray(b.key_ops) ? b.key_ops.map(String) : defaultOps;
  const a = (b.attributes ?? {}) as Partial<Attributes>;
  const v = c.vault.keys.add(
    name,
    { privateJwk: key.export({ format: 'jwk' }), kty, keyOps },
    { ...pickAttrs(a), ...(isTags(b.tags) ? { tags: b.tags } : {}) },
  );
  return keyBundle(c, name, v);
}

function certItem(c: Ctx, name: string, v: Version<CertificateData>) {
  return {
    id: `${c.base}/certificates/${name}/${v.version}`,
    x5t: v.data.x5t,
    attributes: attrs(v.attributes, { nbf: v.data.notBefore, exp: v.data.notAfter }),
    ...(v.tags ? { tags: v.tags } : {}),
  };
}

function certPolicy(c: Ctx, name: string, d: CertificateData) {
  return {
    id: `${c.base}/certificates/${name}/policy`,
    key_props: {
      exportable: true,
      kty: d.kty,
      ...(d.keySize ? { key_size: d.keySize } : {}),
      ...(d.crv ? { crv: d.crv } : {}),
      reuse_key: false,
    },
    secret_props: { contentType: d.contentType },
    x509_props: {
      subject: d.subject,
      ...(d.sans.length
        ? { sans: { dns_names: d.sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)) } }
        : {}),
    },
    issuer: { name: 'Unknown' },
    attributes: { enabled: true, created: nowS(), updated: nowS() },
  };
}

function certBundle(c: Ctx, name: string, v: Version<CertificateData>) {
  return {
    ...certItem(c, name, v),
    kid: `${c.base}/keys/${name}/${v.data.keyVersion}`,
    sid: `${c.base}/secrets/${name}/${v.data.secretVersion}`,
    cer: v.data.cer,
    policy: certPolicy(c, name, v.data),
  };
}

function importCertificate(c: Ctx, name: string, b: Body) {
  if (typeof b.value !== 'string' || !b.value) throw new KvError(400, 'BadParameter', "Property 'value' is required.");
  const policy = (b.policy ?? {}) as { secret_props?: { contentType?: string } };
  const requested = policy.secret_props?.contentType;
  const parsed = parseImport(b.value, requested, typeof b.pwd === 'string' ? b.pwd : undefined);
  const contentType = requested ?? (b.value.includes('-----BEGIN') ? PEM_TYPE : PFX_TYPE);
  if (contentType !== PEM_TYPE && contentType !== PFX_TYPE)
    throw new KvError(400, 'BadParameter', `Unsupported secret content type '${contentType}'.`);
  const leaf = parsed.leaf;
  // A certificate, its key and its backing secret share one version id: `id`, `kid` and `sid` end
  // alike (azure-rest-api-specs#10637; the GetCertificate example in the Key Vault spec).
  const version = newVersionId();
  const pub = parsed.key.export({ format: 'jwk' });
  const kty = parsed.key.asymmetricKeyType === 'ec' ? 'EC' : 'RSA';
  const keyVersion = c.vault.keys.add(
    name,
    {
      privateJwk: pub,
      kty,
      keyOps: kty === 'RSA' ? ['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey'] : ['sign', 'verify'],
      managed: true,
    },
    { version },
  );
  const secretVersion = c.vault.secrets.add(
    name,
    {
      value: backingSecretValue(parsed, contentType),
      contentType,
      managedBy: { certificate: name, keyVersion: keyVersion.version },
    },
    { version },
  );
  const info = describeLeaf(leaf);
  const details = parsed.key.asymmetricKeyDetails;
  const a = (b.attributes ?? {}) as Partial<Attributes>;
  const v = c.vault.certificates.add(
    name,
    {
      ...info,
      contentType,
      keyVersion: keyVersion.version,
      secretVersion: secretVersion.version,
      kty,
      ...(details?.modulusLength ? { keySize: details.modulusLength } : {}),
      ...(details?.namedCurve
        ? { crv: Object.entries(CURVES).find(([, n]) => n === details.namedCurve)?.[0] ?? details.namedCurve }
        : {}),
    },
    { ...pickAttrs(a), ...(isTags(b.tags) ? { tags: b.tags } : {}), version },
  );
  return certBundle(c, name, v);
}

/**
 * Enabling or disabling a certificate version carries to its key and backing secret (same
 * version id): a disabled certificate's secret then answers 403 SecretDisabled, while the
 * certificate and key themselves are still returned, marked `enabled: false` — real clients check
 * that flag themselves (notaryproject/ratify#1474 for keys, #1874 for certificates).
 */
function updateCertificate(c: Ctx, name: string, version: string, b: Body) {
  const v = updateVersion(c.vault.certificates, name, version, b, (x) => x);
  const enabled = ((b.attributes ?? {}) as Partial<Attributes>).enabled;
  if (typeof enabled === 'boolean') {
    for (const col of [c.vault.keys, c.vault.secrets] as Collection<unknown>[]) {
      const same = safe(() => col.get(name, v.version));
      if (same) same.attributes.enabled = enabled;
    }
  }
  return certBundle(c, name, v);
}

function deleteCertificate(c: Ctx, name: string) {
  const e = c.vault.certificates.delete(name);
  // The certificate's key and backing secret go with it, as in Key Vault.
  safe(() => c.vault.keys.delete(name));
  safe(() => c.vault.secrets.delete(name));
  return deletedBundle(c, 'certificates', e, (v) => certBundle(c, name, v));
}

function pickAttrs(a: Partial<Attributes>) {
  return {
    ...(typeof a.enabled === 'boolean' ? { enabled: a.enabled } : {}),
    ...(typeof a.nbf === 'number' ? { nbf: a.nbf } : {}),
    ...(typeof a.exp === 'number' ? { exp: a.exp } : {}),
  };
}

function isTags(t: unknown): t is Record<string, string> {
  return !!t && typeof t === 'object' && !Array.isArray(t);
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
