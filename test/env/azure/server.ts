// The Azure stand-in process: the Entra ID stand-in, the Key Vault emulator and the storage queue
// front (before Azurite, see queue-front.ts) on HTTPS ports of 127.0.0.1, IMDS's managed-identity
// endpoint on a plain-HTTP one (as IMDS is), Event Grid's delivery of Key Vault events into the
// queue (eventgrid.ts), plus a small admin API (on the Entra port, under /_stack/, with a bearer
// key) that plays the part of `az identity`, `az role assignment`, `az keyvault create` and
// `az eventgrid system-topic event-subscription create`.
// Usage: server.ts <config.json>; writes <readyFile> with the ports once listening.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Directory, DirectoryError } from './directory.js';
import { EntraStandIn } from './entra.js';
import { EventGrid, EventGridError, type DeliveryKnobs } from './eventgrid.js';
import { HttpError, readBody, sendJson, type Fault } from './http.js';
import { KeyVaultEmulator } from './keyvault/api.js';
import { KeyVaultEvents, camelCaseStrings } from './keyvault/events.js';
import { KvError, type Vault } from './keyvault/store.js';
import { QueueFront } from './queue-front.js';

export interface AzureServerConfig {
  tlsCertFile: string;
  tlsKeyFile: string;
  issuerCaFile?: string;
  tenantId: string;
  adminKey: string;
  readyFile: string;
  /** Where the Key Vault emulator lists the host names of its vaults (for the test preload's DNS). */
  vaultHostsFile?: string;
  entraPort?: number;
  vaultPort?: number;
  imdsPort?: number;
  /** Azurite, which the queue front forwards to and Event Grid writes into (issuerCaFile signed its certificate). */
  azurite?: { port: number; account: string; key: string };
  queuePort?: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as AzureServerConfig;
  const tls = { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) };
  const directory = new Directory(config.tenantId);
  let entraPort = 0;
  const authorityHost = () => `https://127.0.0.1:${entraPort}`;
  const entra = new EntraStandIn({
    directory,
    authorityHost,
    ...(config.issuerCaFile ? { issuerCa: readFileSync(config.issuerCaFile, 'utf8') } : {}),
  });
  await entra.init();
  const ca = config.issuerCaFile ? readFileSync(config.issuerCaFile, 'utf8') : '';
  const queue = config.azurite ? queueParts(config.azurite, { directory, entra, authorityHost, ca }) : undefined;
  const keyvault = new KeyVaultEmulator({
    directory,
    authorityHost,
    accessTokenKeys: () => entra.jwks,
    ...(config.vaultHostsFile ? { hostsFile: config.vaultHostsFile } : {}),
    ...(queue ? { onNewVersion: (v, kind, name) => queue.events.newVersion(v, kind, name) } : {}),
  });
  queue?.watch(() => keyvault.vaults.values());
  // Each node has its own IMDS: the default node's on the ready file's port, any other's on a port
  // made when PUT /_stack/msi first names it (so test files running at once do not share a node).
  const imdsServers = new Map<string, { server: ReturnType<typeof createHttpServer>; port: Promise<number> }>();
  const imdsPortOf = (node: string, port = 0): Promise<number> => {
    let s = imdsServers.get(node);
    if (!s) {
      const server = createHttpServer((req, res) => void entra.handleImds(req, res, node));
      s = { server, port: listen(server, port) };
      imdsServers.set(node, s);
    }
    return s.port;
  };
  const admin = adminApi({
    directory,
    entra,
    keyvault,
    adminKey: config.adminKey,
    imdsPortOf,
    ...(queue ? { queue } : {}),
  });

  const entraServer = createServer(tls, (req, res) => {
    const handler = (req.url ?? '').startsWith('/_stack/') ? admin(req, res) : entra.handle(req, res);
    handler.catch((e) => sendJson(res, 500, { error: String(e) }));
  });
  const vaultServer = createServer(tls, (req, res) => void keyvault.handle(req, res));
  const queueServer = createServer(tls, (req, res) => {
    if (!queue) return sendJson(res, 404, { error: 'no queue service in this stack' });
    queue.front.handle(req, res).catch((e) => sendJson(res, 500, { error: String(e) }));
  });
  entraPort = await listen(entraServer, config.entraPort ?? 0);
  const vaultPort = await listen(vaultServer, config.vaultPort ?? 0);
  const imdsPort = await imdsPortOf('default', config.imdsPort ?? 0);
  const queuePort = await listen(queueServer, config.queuePort ?? 0);
  const tmp = `${config.readyFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ entraPort, vaultPort, imdsPort, queuePort, pid: process.pid }));
  renameSync(tmp, config.readyFile);
  console.log(JSON.stringify({ msg: 'azure stand-in ready', entra: authorityHost(), vaultPort, imdsPort, queuePort }));

  const shutdown = () => {
    entraServer.close();
    vaultServer.close();
    queueServer.close();
    queue?.events.close();
    for (const { server } of imdsServers.values()) server.close();
    entraServer.closeAllConnections();
    vaultServer.closeAllConnections();
    queueServer.closeAllConnections();
    for (const { server } of imdsServers.values()) server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
}

function adminApi(deps: {
  directory: Directory;
  entra: EntraStandIn;
  keyvault: KeyVaultEmulator;
  adminKey: string;
  imdsPortOf: (node: string) => Promise<number>;
  queue?: QueueParts;
}) {
  const { directory, entra, keyvault } = deps;
  const expected = Buffer.from(`Bearer ${deps.adminKey}`);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return sendJson(res, 401, { error: 'admin key required' });
    const url = new URL(req.url ?? '/', 'https://admin');
    const path = url.pathname.replace(/^\/_stack/, '');
    const body =
      req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH'
        ? (JSON.parse((await readBody(req)) || '{}') as Record<string, unknown>)
        : {};
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    try {
      let m: RegExpExecArray | null;
      if (deps.queue && (await eventAdmin(deps.queue, { method: req.method ?? 'GET', path, body }, res))) return;
      if (req.method === 'POST' && path === '/vaults') {
        const v = keyvault.createVault(str('name') ?? '', str('tenantId') ?? directory.defaultTenant, str('dnsSuffix'));
        return sendJson(res, 200, { name: v.name, tenantId: v.tenantId, host: v.host });
      }
      if (req.method === 'PATCH' && (m = /^\/vaults\/([^/]+)$/.exec(path))) {
        // `az keyvault update`: network rules, and the shape of its own throttling.
        const v = keyvault.vaults.get(decodeURIComponent(m[1]!).toLowerCase());
        if (!v) return sendJson(res, 404, { error: `no vault '${m[1]}'` });
        if (body.network === 'open' || body.network === 'privateLinkOnly' || body.network === 'firewall')
          v.settings.network = body.network;
        if (typeof body.throttleRetryAfter === 'boolean') v.settings.throttleRetryAfter = body.throttleRetryAfter;
        if (typeof body.throttleLimit === 'number') v.settings.throttleLimit = body.throttleLimit;
        return sendJson(res, 200, v.settings);
      }
      if (req.method === 'POST' && path === '/identities') {
        const id = directory.createIdentity({
          name: str('name') ?? '',
          ...(str('tenantId') ? { tenantId: str('tenantId')! } : {}),
          ...(str('clientSecret') ? { clientSecret: str('clientSecret')! } : {}),
        });
        const { clientSecret: _s, ...shown } = id;
        return sendJson(res, 200, shown);
      }
      if (req.method === 'POST' && (m = /^\/identities\/([^/]+)\/federated-credentials$/.exec(path))) {
        const fic = directory.addFederatedCredential(decodeURIComponent(m[1]!), {
          name: str('name') ?? 'credential',
          issuer: str('issuer') ?? '',
          subject: str('subject') ?? '',
          audiences: Array.isArray(body.audiences) ? body.audiences.map(String) : ['api://AzureADTokenExchange'],
        });
        return sendJson(res, 200, fic);
      }
      if (req.method === 'POST' && path === '/role-assignments') {
        return sendJson(
          res,
          200,
          directory.assignRole({ role: str('role') ?? '', assignee: str('assignee') ?? '', scope: str('scope') ?? '' }),
        );
      }
      if (req.method === 'DELETE' && path === '/role-assignments') {
        const removed = directory.removeRoleAssignments({
          ...(url.searchParams.get('assignee') ? { assignee: url.searchParams.get('assignee')! } : {}),
          ...(url.searchParams.get('scope') ? { scope: url.searchParams.get('scope')! } : {}),
          ...(url.searchParams.get('role') ? { role: url.searchParams.get('role')! } : {}),
        });
        return sendJson(res, 200, { removed });
      }
      if (req.method === 'POST' && path === '/faults') {
        const target = str('target') === 'vault' ? keyvault.faults : entra.faults;
        target.add({
          pathPattern: str('pathPattern') ?? '.*',
          status: Number(body.status ?? 500),
          count: Number(body.count ?? 1),
          ...(body.retryAfterSeconds !== undefined ? { retryAfterSeconds: Number(body.retryAfterSeconds) } : {}),
          ...(body.delayMs !== undefined ? { delayMs: Number(body.delayMs) } : {}),
          ...(str('clientId') ? { clientId: str('clientId')! } : {}),
        } satisfies Fault);
        return sendJson(res, 200, {});
      }
      if (req.method === 'DELETE' && path === '/faults') {
        keyvault.faults.clear();
        entra.faults.clear();
        return sendJson(res, 200, {});
      }
      if (req.method === 'PUT' && path === '/msi') {
        const ref = (x: unknown) => directory.findIdentity(String(x))?.clientId ?? '';
        const node = str('node') ?? 'default';
        const msi = {
          header: str('header') ?? '',
          ...(str('systemAssigned') ? { systemAssigned: ref(str('systemAssigned')) } : {}),
          attached: [
            ...(Array.isArray(body.attached) ? body.attached.map(ref) : []),
            ...(str('systemAssigned') ? [ref(str('systemAssigned'))] : []),
          ],
        };
        entra.nodes.set(node, msi);
        return sendJson(res, 200, { ...msi, imdsPort: await deps.imdsPortOf(node) });
      }
      if (req.method === 'PUT' && path === '/access-token-lifetime') {
        const clientId = str('clientId');
        if (clientId) entra.accessTokenLifetimes.set(clientId, Number(body.seconds ?? 3599));
        else entra.accessTokenLifetimeS = Number(body.seconds ?? 3599);
        return sendJson(res, 200, {});
      }
      if (req.method === 'GET' && path === '/stats') {
        return sendJson(res, 200, {
          vaultRequests: Object.fromEntries(keyvault.counts),
          tokenRequests: entra.tokenRequests,
          queueRefusals: Object.fromEntries(deps.queue?.front.refusals ?? []),
          eventSubscriptions: deps.queue?.eventGrid.stats() ?? {},
        });
      }
      return sendJson(res, 404, { error: `no admin route ${req.method} ${path}` });
    } catch (e) {
      const status =
        e instanceof DirectoryError || e instanceof KvError || e instanceof HttpError || e instanceof EventGridError
          ? e.status
          : 500;
      return sendJson(res, status, { error: (e as Error).message });
    }
  };
}

/** The queue front, Event Grid and Key Vault's events, present when the stack runs Azurite. */
interface QueueParts {
  front: QueueFront;
  eventGrid: EventGrid;
  events: KeyVaultEvents;
  watch(vaults: () => Iterable<Vault>): void;
}

function queueParts(
  azurite: NonNullable<AzureServerConfig['azurite']>,
  o: { directory: Directory; entra: EntraStandIn; authorityHost: () => string; ca: string },
): QueueParts {
  const front = new QueueFront({
    directory: o.directory,
    tenantId: o.directory.defaultTenant,
    authorityHost: o.authorityHost,
    accessTokenKeys: () => o.entra.jwks,
    azurite,
    ca: o.ca,
  });
  const eventGrid = new EventGrid({
    queueService: `https://127.0.0.1:${azurite.port}/${azurite.account}`,
    account: azurite.account,
    accountKey: azurite.key,
    legacyShape: camelCaseStrings,
  });
  let vaults: () => Iterable<Vault> = () => [];
  const events = new KeyVaultEvents({ eventGrid, vaults: () => vaults() });
  return { front, eventGrid, events, watch: (v) => (vaults = v) };
}

/**
 * The admin routes of event delivery: `az eventgrid system-topic event-subscription create` for a
 * vault with a storage-queue endpoint, its delivery knobs, and a raw message into a queue.
 */
async function eventAdmin(
  q: QueueParts,
  r: { method: string; path: string; body: Record<string, unknown> },
  res: ServerResponse,
): Promise<boolean> {
  const { method, path, body } = r;
  let m: RegExpExecArray | null;
  if (method === 'POST' && path === '/event-subscriptions') {
    const vault = String(body.vault ?? '').toLowerCase();
    const queue = queueName(body);
    const included = Array.isArray(body.includedEventTypes) ? body.includedEventTypes.map(String) : undefined;
    const spec = q.eventGrid.subscribe({
      name: typeof body.name === 'string' && body.name ? body.name : `${vault}-to-${queue}`,
      vault,
      queue,
      ...(included ? { includedEventTypes: included } : {}),
    });
    sendJson(res, 200, spec);
    return true;
  }
  if (method === 'DELETE' && (m = /^\/event-subscriptions\/([^/]+)$/.exec(path))) {
    sendJson(res, 200, { removed: q.eventGrid.unsubscribe(decodeURIComponent(m[1]!)) });
    return true;
  }
  if (method === 'PUT' && (m = /^\/event-subscriptions\/([^/]+)\/delivery$/.exec(path))) {
    sendJson(res, 200, q.eventGrid.setDelivery(decodeURIComponent(m[1]!), deliveryKnobs(body)));
    return true;
  }
  if (method === 'POST' && (m = /^\/event-subscriptions\/([^/]+)\/release$/.exec(path))) {
    sendJson(res, 200, { released: q.eventGrid.release(decodeURIComponent(m[1]!)) });
    await q.eventGrid.drain();
    return true;
  }
  if (method === 'POST' && (m = /^\/queues\/([^/]+)\/messages$/.exec(path))) {
    await q.eventGrid.injectRaw(decodeURIComponent(m[1]!), String(body.text ?? ''));
    sendJson(res, 200, {});
    return true;
  }
  return false;
}

/** The queue a subscription names: `queue` (a name) or `queueUrl` (https://<account>.queue.core.windows.net/<queue>). */
function queueName(body: Record<string, unknown>): string {
  if (typeof body.queue === 'string') return body.queue;
  try {
    return new URL(String(body.queueUrl)).pathname.split('/').filter(Boolean)[0] ?? '';
  } catch {
    return '';
  }
}

function deliveryKnobs(body: Record<string, unknown>): Partial<DeliveryKnobs> {
  const knobs: Partial<DeliveryKnobs> = {};
  for (const k of ['copies', 'delayMs', 'dropNext', 'dropFraction'] as const) {
    if (typeof body[k] === 'number') knobs[k] = body[k];
  }
  for (const k of ['hold', 'legacyShape'] as const) {
    if (typeof body[k] === 'boolean') knobs[k] = body[k];
  }
  return knobs;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
