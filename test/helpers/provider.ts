// Starts provider-azure as its own process (the bundle, as it ships: deploy/bundle.mjs) against the local stack,
// and builds MountRequests the way the manager and the CSI driver do.
import { buildMountRequest, ProviderClient, type MountRequest } from '@secret-store-sync/proto';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../env/control-plane.js';
import { freePort } from '../env/ports.js';
import { loadStackInfo } from '../env/stack.js';
import type { RecordedMount } from './strict-provider.js';

export interface RunningProviderProcess {
  endpoint: string;
  client: ProviderClient;
  logFile: string;
  healthzUrl: string;
  metricsUrl: string;
  child: ChildProcess;
  logs(): string;
  metrics(): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startProvider(
  opts: {
    args?: string[];
    env?: Record<string, string>;
    socketDir?: string;
    nodeArgs?: string[];
    entry?: 'bundle' | 'dist';
  } = {},
): Promise<RunningProviderProcess> {
  const info = loadStackInfo();
  const dir = opts.socketDir ?? mkdtempSync(join(tmpdir(), 'sss-provider-'));
  const endpoint = `unix://${join(dir, 'azure.sock')}`;
  const [healthz, metrics] = [await freePort(), await freePort()];
  const logFile = join(dir, 'provider.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      join(repoRoot, 'provider-azure', opts.entry ?? 'bundle', 'main.js'),
      `--endpoint=${endpoint}`,
      `--healthz-port=${healthz}`,
      `--metrics-port=${metrics}`,
      '--http-bind-address=127.0.0.1',
      '--log-level=debug',
      ...(opts.args ?? []),
    ],
    {
      stdio: ['ignore', fd, fd],
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: info.caFile,
        AZURE_AUTHORITY_HOST: info.azure.authorityHost,
        ...opts.env,
      },
    },
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const client = new ProviderClient(endpoint);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`provider exited (${child.exitCode}):\n${readFileSync(logFile, 'utf8')}`);
    if (
      existsSync(endpoint.slice('unix://'.length)) &&
      (await client.version(1_000).then(
        () => true,
        () => false,
      ))
    )
      break;
    if (Date.now() > deadline) throw new Error(`provider did not start:\n${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    client,
    logFile,
    child,
    healthzUrl: `http://127.0.0.1:${healthz}/healthz`,
    metricsUrl: `http://127.0.0.1:${metrics}/metrics`,
    logs: () => readFileSync(logFile, 'utf8'),
    metrics: async () => (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text(),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      client.close();
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A MountRequest as the manager builds it (the shared builder): SPC parameters, pod keys and the SA token. */
export function mountRequest(opts: {
  parameters: Record<string, string>;
  token?: string;
  namespace?: string;
  serviceAccount?: string;
  secrets?: Record<string, string>;
  permission?: number;
  /** What the caller holds now (a re-sync); none: a first sync. */
  currentObjectVersions?: { id: string; version: string }[];
}): MountRequest {
  return buildMountRequest({
    parameters: opts.parameters,
    pod: { name: 'secret-sync', uid: '', namespace: opts.namespace ?? 'default' },
    serviceAccountName: opts.serviceAccount ?? 'default',
    ...(opts.token !== undefined
      ? {
          tokens: {
            'api://AzureADTokenExchange': {
              token: opts.token,
              expirationTimestamp: new Date(Date.now() + 600_000).toISOString(),
            },
          },
        }
      : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    ...(opts.permission !== undefined ? { permission: opts.permission } : {}),
    ...(opts.currentObjectVersions ? { currentObjectVersions: opts.currentObjectVersions } : {}),
  });
}

export interface TestProvider {
  socketDir: string;
  name: string;
  setState(state: {
    files: Record<string, string>;
    fail?: { code: string; message: string };
    hangMs?: number;
    expiresOn?: Record<string, string>;
  }): void;
  /** Every Mount it received, as recorded by test/helpers/strict-provider.ts (shapes, no values). */
  requests(): RecordedMount[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The manager-only tests' provider: test/helpers/strict-provider.ts as its own process — a file
 * provider that refuses whatever third-party providers (vault-csi-provider, the CSI driver's e2e
 * provider) refuse. `validateTokensAudience`: the audiences whose tokens it requires, as the e2e
 * provider's VALIDATE_TOKENS_AUDIENCE (default none: the manager sends a provider other than
 * azure no token unless `--provider-token-audiences` names it).
 */
export async function startTestProvider(
  name = 'test',
  socketDir = mkdtempSync(join(tmpdir(), 'sss-tp-')),
  opts: { validateTokensAudience?: string[] } = {},
): Promise<TestProvider> {
  const stateFile = join(socketDir, `${name}.json`);
  if (!existsSync(stateFile)) writeFileSync(stateFile, JSON.stringify({ files: {} }));
  const requestsFile = join(socketDir, `${name}.requests.jsonl`);
  const socket = join(socketDir, `${name}.sock`);
  const logFd = openSync(join(socketDir, `${name}.log`), 'a');
  const audiences = opts.validateTokensAudience ?? [];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'test', 'helpers', 'strict-provider.ts'),
      `--endpoint=unix://${socket}`,
      `--state=${stateFile}`,
      `--requests=${requestsFile}`,
      `--validate-tokens-audience=${audiences.join(',')}`,
    ],
    { cwd: repoRoot, stdio: ['ignore', logFd, logFd], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const client = new ProviderClient(`unix://${socket}`);
  const deadline = Date.now() + 20_000;
  while (!(
    existsSync(socket) &&
    (await client.version(1_000).then(
      () => true,
      () => false,
    ))
  )) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`test provider did not start: ${readFileSync(join(socketDir, `${name}.log`), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  client.close();
  return {
    socketDir,
    name,
    setState: (state) => writeFileSync(stateFile, JSON.stringify(state)),
    requests: () =>
      existsSync(requestsFile)
        ? readFileSync(requestsFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as RecordedMount)
        : [],
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      await exited;
    },
  };
}
