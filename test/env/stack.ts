// The local stack: a real Kubernetes control plane plus the Azure stand-ins (Entra ID, Key Vault,
// Event Grid's delivery) and Azurite's queue service, all on 127.0.0.1 with one CA per run. Used by the tests' global setup, the sandbox and
// the benchmarks. `StackInfo` travels to other processes as environment variables (see toEnv).
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensureBinaries,
  repoRoot,
  startControlPlane,
  type ControlPlane,
  type ControlPlaneInfo,
} from './control-plane.js';
import { cleanupNode } from './node-cleanup.js';
import { startAzurite } from './azure/azurite.js';
import { QUEUE_HOST_SUFFIX } from './azure/queue-front.js';
import { createCa } from './pki.js';
import { resolveKubeVersion } from './versions.js';
import { killRecordedOnExit, startProcess, stopProcess, stopRecorded, waitUntil, type Managed } from './processes.js';

export interface StackInfo {
  dir: string;
  caFile: string;
  k8s: ControlPlaneInfo;
  azure: {
    tenantId: string;
    authorityHost: string;
    keyvaultAddr: string;
    /** IMDS's plain-HTTP base URL, the value for AZURE_POD_IDENTITY_AUTHORITY_HOST (see entra.ts handleImds). */
    imdsHost: string;
    adminUrl: string;
    adminKey: string;
    operator: { clientId: string; clientSecret: string };
    /** The storage account with the queues Key Vault events are delivered to (see azure/eventgrid.ts). */
    queue: QueueServiceInfo;
  };
}

export interface QueueServiceInfo {
  /** https://<account>.queue.core.windows.net: the real URL shape, which the test preload sends to `addr`. */
  serviceUrl: string;
  account: string;
  /** The account's Shared Key, for admin use (creating queues, peeking); the product uses Entra tokens. */
  accountKey: string;
  /** 127.0.0.1:<port> of the queue front (RBAC, then Azurite). */
  addr: string;
}

export interface Stack {
  info: StackInfo;
  /** For fault tests: restart its apiserver or etcd. */
  controlPlane: ControlPlane;
  stop(): Promise<void>;
}

export const PRELOAD = join(repoRoot, 'test', 'env', 'preload.mjs');

export interface StartStackOptions {
  /** Where state, certificates and logs go; a fresh temp folder by default. */
  dir?: string;
  manifests?: string[];
  log?: (msg: string) => void;
  tenantId?: string;
  /** Stop everything on SIGINT/SIGTERM (default); off for programs that stop it their own way. */
  handleSignals?: boolean;
  /** A Kubernetes release or minor (see versions.ts); the newest by default. */
  kubeVersion?: string;
  /**
   * kube-apiserver's --runtime-config, e.g. `admissionregistration.k8s.io/v1beta1=true` to serve an
   * API a release has off by default; SSS_RUNTIME_CONFIG by default.
   */
  runtimeConfig?: string;
}

export async function startStack(opts: StartStackOptions = {}): Promise<Stack> {
  const log = opts.log ?? ((m: string) => console.log(`[stack] ${m}`));
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sss-stack-'));
  mkdirSync(dir, { recursive: true });
  await stopRecorded(dir); // a previous run in this folder that died without cleaning up
  killRecordedOnExit(dir, opts.handleSignals ?? true);
  const ca = createCa();
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  const processes: Managed[] = [];
  let controlPlane: ControlPlane | undefined;
  const stop = async () => {
    // A node a test or the sandbox started here and did not stop (test/env/node.ts): its containers,
    // mounts and cgroups are not in the pid file.
    await cleanupNode(dir);
    for (const p of processes.reverse()) await stopProcess(p);
    await controlPlane?.stop();
    await stopRecorded(dir);
  };

  try {
    // The binaries first (a first run builds them, for minutes): the stand-in's readiness wait and
    // every other clock start only once there is nothing left to build.
    const kubeVersion = resolveKubeVersion(opts.kubeVersion);
    const runtimeConfig = opts.runtimeConfig ?? process.env.SSS_RUNTIME_CONFIG;
    await ensureBinaries(log, kubeVersion);
    const started = Date.now();
    const azureStart = startAzure({ dir, ca, caFile, tenantId: opts.tenantId ?? randomUUID(), log });
    controlPlane = await startControlPlane({
      stateDir: dir,
      ca,
      manifests: opts.manifests ?? [],
      log,
      handleSignals: opts.handleSignals ?? true,
      kubeVersion,
      apiserverArgs: runtimeConfig ? [`--runtime-config=${runtimeConfig}`] : [],
    });
    const azure = await azureStart;
    processes.push(...azure.processes);
    log(`stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s (state in ${dir})`);
    const info: StackInfo = { dir, caFile, k8s: controlPlane.info, azure: azure.info };
    writeFileSync(join(dir, 'stack.json'), JSON.stringify(info, null, 2));
    return { info, controlPlane, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startAzure(o: {
  dir: string;
  ca: ReturnType<typeof createCa>;
  caFile: string;
  tenantId: string;
  log: (m: string) => void;
}) {
  const leaf = o.ca.issue({
    commonName: 'azure stand-in',
    dnsNames: [
      'localhost',
      `*.${QUEUE_HOST_SUFFIX}`,
      '*.vault.azure.net',
      '*.vault.azure.cn',
      '*.vault.usgovcloudapi.net',
      '*.vault.microsoftazure.de',
    ],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  const azureDir = join(o.dir, 'azure');
  mkdirSync(azureDir, { recursive: true });
  writeFileSync(join(azureDir, 'tls.crt'), leaf.cert);
  writeFileSync(join(azureDir, 'tls.key'), leaf.key, { mode: 0o600 });
  // Azurite serves HTTPS with the same certificate (its OAuth mode refuses bearer tokens over HTTP).
  const azurite = await startAzurite({
    stateDir: o.dir,
    certFile: join(azureDir, 'tls.crt'),
    keyFile: join(azureDir, 'tls.key'),
  });
  const adminKey = randomBytes(24).toString('hex');
  const readyFile = join(azureDir, 'ready.json');
  rmSync(readyFile, { force: true });
  const configFile = join(azureDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      tlsCertFile: join(azureDir, 'tls.crt'),
      tlsKeyFile: join(azureDir, 'tls.key'),
      issuerCaFile: o.caFile,
      tenantId: o.tenantId,
      adminKey,
      readyFile,
      vaultHostsFile: vaultHostsFile(o.dir),
      azurite: azurite.info,
    }),
    { mode: 0o600 },
  );
  const proc = startProcess({
    name: 'azure-stand-in',
    command: process.execPath,
    args: ['--import', 'tsx', join(repoRoot, 'test', 'env', 'azure', 'server.ts'), configFile],
    cwd: repoRoot,
    stateDir: o.dir,
    // The CA: Event Grid's writes go to Azurite over HTTPS with the storage SDK.
    env: { ...process.env, NODE_OPTIONS: '', NODE_EXTRA_CA_CERTS: o.caFile },
  });
  await waitUntil('Azure stand-in', async () => existsSync(readyFile), {
    timeoutMs: 30_000,
    process: proc,
    intervalMs: 100,
  });
  const { entraPort, vaultPort, imdsPort, queuePort } = JSON.parse(readFileSync(readyFile, 'utf8')) as {
    entraPort: number;
    vaultPort: number;
    imdsPort: number;
    queuePort: number;
  };
  const authorityHost = `https://127.0.0.1:${entraPort}`;
  const adminUrl = `${authorityHost}/_stack`;
  // An operator service principal that may do anything in any vault: the tests' and the sandbox's
  // `az keyvault secret set` etc. go through the real SDK with it.
  const clientSecret = randomBytes(24).toString('base64url');
  const operator = (await adminCall(adminUrl, adminKey, o.ca.cert, 'POST', '/identities', {
    name: 'stack-operator',
    clientSecret,
  })) as { clientId: string };
  await adminCall(adminUrl, adminKey, o.ca.cert, 'POST', '/role-assignments', {
    role: 'Key Vault Administrator',
    assignee: operator.clientId,
    scope: '/',
  });
  o.log(
    `Azure stand-ins ready: Entra ${authorityHost}, Key Vault 127.0.0.1:${vaultPort}, queues 127.0.0.1:${queuePort} (Azurite ${azurite.info.port})`,
  );
  return {
    processes: [azurite.process, proc],
    info: {
      tenantId: o.tenantId,
      authorityHost,
      keyvaultAddr: `127.0.0.1:${vaultPort}`,
      imdsHost: `http://127.0.0.1:${imdsPort}`,
      adminUrl,
      adminKey,
      operator: { clientId: operator.clientId, clientSecret },
      queue: {
        serviceUrl: `https://${azurite.info.account}.${QUEUE_HOST_SUFFIX}`,
        account: azurite.info.account,
        accountKey: azurite.info.key,
        addr: `127.0.0.1:${queuePort}`,
      },
    },
  };
}

export async function adminCall(
  adminUrl: string,
  adminKey: string,
  ca: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${adminUrl}${path}`,
      {
        method,
        ca,
        headers: { authorization: `Bearer ${adminKey}`, ...(data ? { 'content-type': 'application/json' } : {}) },
        // A connection per call: a pooled one left idle while the caller ran synchronous work (Jest
        // loading a test file in the process that started the stack) may already be closed by the
        // server's keep-alive timeout, and the call then fails with "socket hang up" (ECONNRESET).
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const parsed = text ? (JSON.parse(text) as unknown) : {};
          if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
          else resolve(parsed);
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The host names of the vaults that exist, which the test preload resolves (see test/env/preload.mjs). */
function vaultHostsFile(stackDir: string): string {
  return join(stackDir, 'azure', 'vault-hosts.json');
}

/** The environment through which other processes (test workers, the product) find the stack. */
export function toEnv(info: StackInfo): Record<string, string> {
  return {
    SSS_STACK_FILE: join(info.dir, 'stack.json'),
    SSS_STACK_CA: info.caFile,
    SSS_KEYVAULT_ADDR: info.azure.keyvaultAddr,
    SSS_KEYVAULT_HOSTS: vaultHostsFile(info.dir),
    SSS_QUEUE_ADDR: info.azure.queue.addr,
    SSS_QUEUE_HOST: new URL(info.azure.queue.serviceUrl).hostname,
    KUBECONFIG: info.k8s.kubeconfig,
  };
}

/** Reads the running stack's description (in test workers, the sandbox's helpers, the bench). */
export function loadStackInfo(): StackInfo {
  const file = process.env.SSS_STACK_FILE;
  if (!file) throw new Error('SSS_STACK_FILE is not set: start the stack first (npm test does it in its global setup)');
  return JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
}
