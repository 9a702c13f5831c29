// The storage queue service's front door, in the Azure stand-in process: what real Azure Storage
// does with an Entra token before a queue request reaches the queue, and what Azurite lacks. It
// verifies the bearer token (signature by the Entra stand-in, audience, issuer, lifetime), checks
// Azure RBAC (the caller's role assignments on the storage account or the queue, see
// directory.ts QUEUE_ROLE_PERMISSIONS), and forwards what passes to Azurite unchanged. Shared Key
// and SAS requests pass straight through: Azurite checks those itself (real accounts accept them
// unless `allowSharedKeyAccess` is off).
//
// URL shape: the real one, https://<account>.queue.core.windows.net/<queue>. The test preload sends
// that host here (SSS_QUEUE_ADDR), and Azurite reads the account from the host name when it is not
// an IP ("production-style URL", Azurite README), so clients need no emulator-only URL and the
// product builds queue URLs as it would in Azure.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'node:https';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import type { Directory, QueueResource } from './directory.js';

/** The storage account's DNS suffix in Azure's public cloud. */
export const QUEUE_HOST_SUFFIX = 'queue.core.windows.net';
/** The resource a storage token is for: `https://storage.azure.com/.default` is the SDK's scope. */
export const STORAGE_RESOURCE = 'https://storage.azure.com';

export interface QueueFrontOptions {
  directory: Directory;
  /** The storage account's tenant: tokens must come from it. */
  tenantId: string;
  authorityHost: () => string;
  accessTokenKeys: () => JSONWebKeySet;
  azurite: { port: number; account: string };
  /** PEM of the CA that issued Azurite's certificate. */
  ca: string;
}

/** A refused request: Azure Storage's error code, status and optional AuthenticationErrorDetail. */
class StorageRefusal {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly message: string,
    readonly detail?: string,
  ) {}
}

const QUEUE = 'Microsoft.Storage/storageAccounts/queueServices/queues';
const SERVICE = 'Microsoft.Storage/storageAccounts/queueServices';

/**
 * The permissions a queue request needs, as alternatives (any one set suffices): the table
 * "Permissions for Queue service operations" in learn.microsoft.com/rest/api/storageservices/
 * authorize-with-azure-active-directory. Unknown shapes need a permission nobody holds.
 */
export function requiredPermissions(method: string, parts: string[], query: URLSearchParams): string[][] {
  const comp = query.get('comp');
  const [queue, messages, messageId] = parts;
  if (!queue) {
    if (query.get('restype') === 'service') return [[`${SERVICE}/read`]]; // service properties, stats
    if (comp === 'list') return [[`${QUEUE}/read`]];
    return [['(unknown operation)']];
  }
  if (messages === 'messages') {
    if (messageId !== undefined) {
      if (method === 'DELETE') return [[`${QUEUE}/messages/process/action`], [`${QUEUE}/messages/delete`]];
      if (method === 'PUT') return [[`${QUEUE}/messages/write`]];
    }
    if (method === 'POST') return [[`${QUEUE}/messages/add/action`], [`${QUEUE}/messages/write`]];
    if (method === 'GET' && query.get('peekonly') === 'true') return [[`${QUEUE}/messages/read`]];
    if (method === 'GET')
      return [[`${QUEUE}/messages/process/action`], [`${QUEUE}/messages/delete`, `${QUEUE}/messages/read`]];
    if (method === 'DELETE') return [[`${QUEUE}/messages/delete`]];
    return [['(unknown operation)']];
  }
  if (comp === 'acl') return [[method === 'PUT' ? `${QUEUE}/setAcl/action` : `${QUEUE}/getAcl/action`]];
  if (method === 'PUT') return [[`${QUEUE}/write`]]; // Create Queue, Set Queue Metadata
  if (method === 'DELETE') return [[`${QUEUE}/delete`]];
  return [[`${QUEUE}/read`]]; // Get Queue Metadata (GET/HEAD ?comp=metadata)
}

export class QueueFront {
  /** Requests refused here, by error code (tests and the bench read them through /_stack/stats). */
  readonly refusals = new Map<string, number>();

  constructor(private readonly opts: QueueFrontOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const auth = req.headers.authorization ?? '';
    try {
      if (/^Bearer /i.test(auth)) await this.authorize(req, auth.slice('Bearer '.length).trim());
    } catch (e) {
      if (!(e instanceof StorageRefusal)) throw e;
      this.refusals.set(e.code, (this.refusals.get(e.code) ?? 0) + 1);
      req.resume();
      return this.refuse(res, e);
    }
    this.forward(req, res);
  }

  private async authorize(req: IncomingMessage, token: string): Promise<void> {
    const hostname = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    const account = hostname.endsWith(`.${QUEUE_HOST_SUFFIX}`) ? hostname.split('.')[0]! : '';
    const url = new URL(req.url ?? '/', `https://${hostname || 'queue'}`);
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const claims = await this.verify(token, account);
    const target: QueueResource = { account, ...(parts[0] ? { queue: parts[0] } : {}) };
    const needed = requiredPermissions(req.method ?? 'GET', parts, url.searchParams);
    if (!this.opts.directory.allowedOnQueue(String(claims.oid), target, needed)) {
      // The real 403 for a token whose principal lacks the data role: code and message as in
      // Azure Storage's error-code table (learn.microsoft.com/rest/api/storageservices/
      // blob-service-error-codes lists AuthorizationPermissionMismatch for all services' RBAC
      // refusals) and as Azurite's StorageErrorFactory spells it.
      throw new StorageRefusal(
        403,
        'AuthorizationPermissionMismatch',
        'This request is not authorized to perform this operation using this permission.',
      );
    }
  }

  /**
   * Token validation as Azure Storage answers it: 401 InvalidAuthenticationInfo with an
   * AuthenticationErrorDetail and a bearer challenge — the shape recorded from the real service in
   * azure-sdk-for-js (sdk/storage/storage-queue test recordings, 2023-10-13: "Audience validation
   * failed. Audience did not match.", `WWW-Authenticate: Bearer authorization_uri=…/<tenant>/oauth2/
   * authorize resource_id=https://storage.azure.com`). Accepted audiences: the storage resource and
   * the account's own queue endpoint, the two Azure Storage documents (authorize-access-azure-active-
   * directory, "Microsoft Entra ID resource ID") and Azurite accepts (VALID_QUEUE_AUDIENCES).
   * The details for an expired token, a bad signature and a foreign issuer follow Azurite's and the
   * same pattern; no real response with those details was found to quote.
   */
  private async verify(token: string, account: string): Promise<Record<string, unknown>> {
    const unauthenticated = (detail: string) =>
      new StorageRefusal(
        401,
        'InvalidAuthenticationInfo',
        'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.',
        detail,
      );
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, createLocalJWKSet(this.opts.accessTokenKeys()), { clockTolerance: 300 }));
    } catch (e) {
      throw unauthenticated(
        (e as { code?: string }).code === 'ERR_JWT_EXPIRED'
          ? 'Lifetime validation failed. The token is expired.'
          : 'Signature validation failed. Signature is invalid.',
      );
    }
    const auds = Array.isArray(payload.aud) ? payload.aud.map(String) : [String(payload.aud)];
    const accepted = [STORAGE_RESOURCE, `https://${account}.${QUEUE_HOST_SUFFIX}`];
    if (!auds.some((a) => accepted.includes(a.replace(/\/$/, ''))))
      throw unauthenticated('Audience validation failed. Audience did not match.');
    if (payload.iss !== `https://sts.windows.net/${this.opts.tenantId}/`)
      throw unauthenticated('Issuer validation failed. Issuer did not match.');
    return payload;
  }

  private refuse(res: ServerResponse, e: StorageRefusal): void {
    const requestId = randomUUID();
    const time = new Date().toISOString().replace('Z', '0000Z');
    const detail = e.detail ? `<AuthenticationErrorDetail>${e.detail}</AuthenticationErrorDetail>` : '';
    const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${e.code}</Code><Message>${e.message}\nRequestId:${requestId}\nTime:${time}</Message>${detail}</Error>`;
    res.writeHead(e.status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      'x-ms-request-id': requestId,
      'x-ms-error-code': e.code,
      ...(e.status === 401
        ? {
            'www-authenticate': `Bearer authorization_uri=${this.opts.authorityHost()}/${this.opts.tenantId}/oauth2/authorize resource_id=${STORAGE_RESOURCE}`,
          }
        : {}),
    });
    res.end(body);
  }

  /** Passes the request to Azurite as it came (Host too: Azurite takes the account from it). */
  private forward(req: IncomingMessage, res: ServerResponse): void {
    const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
    const upstream = request(
      {
        host: '127.0.0.1',
        port: this.opts.azurite.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        ca: this.opts.ca,
        servername: hostname || 'localhost',
        timeout: 30_000,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('Azurite did not answer within 30 s')));
    upstream.on('error', (err) => {
      if (res.headersSent) return void res.destroy(err);
      this.refuse(res, new StorageRefusal(503, 'ServerBusy', `The queue service is unavailable (${err.message}).`));
    });
    req.pipe(upstream);
  }
}
