#!/usr/bin/env node
// The manager's test provider: serves files from a JSON state file like proto/examples/
// file-provider.ts, but refuses every request that a third-party provider written for the Secrets
// Store CSI driver refuses, so the manager's own tests fail on a request that those providers
// would not take. Each rule names the provider and source it mirrors (read at
// hashicorp/vault-csi-provider becf48f and kubernetes-sigs/secrets-store-csi-driver 0aad886).
// Like them it answers a refusal with a plain error (gRPC UNKNOWN) and the same text.
//
//   strict-provider --endpoint unix:///dir/test.sock --state test.json
//     [--validate-tokens-audience aud1,aud2] [--requests requests.jsonl]
//
// state: { "files": {"<path>": "<utf-8>"}, "fail"?: {code, message}, "hangMs"?: N,
//          "expiresOn"?: {"<path>": "<RFC 3339>"} (sent in the optional expiry trailer) }
// --requests: one JSON line per Mount with the request's shape (never a token or secret value).
import { Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  API_VERSION,
  OBJECT_EXPIRY_METADATA_KEY,
  encodeExpiry,
  ProviderError,
  providerService,
  socketPath,
  toMountResponse,
  type MountRequest__Output,
  type MountResponse,
  type ProviderErrorCode,
} from '@secret-store-sync/proto';
import { appendFileSync, existsSync, readFileSync, unlinkSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface State {
  files: Record<string, string>;
  fail?: { code: ProviderErrorCode; message: string };
  hangMs?: number;
  expiresOn?: Record<string, string>;
}

/** What a test may check of each Mount: the request's shape, no values. */
export interface RecordedMount {
  authority: string;
  targetPath: string;
  permission: string;
  secrets: string[];
  currentObjectVersions: { id: string; version: string }[];
  attributeNames: string[];
  podNamespace?: string;
  serviceAccountName?: string;
  tokenAudiences?: string[];
}

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    state: { type: 'string' },
    'validate-tokens-audience': { type: 'string' },
    requests: { type: 'string' },
  },
});
if (!values.endpoint || !values.state) {
  console.error(
    'usage: strict-provider --endpoint unix:///path.sock --state files.json [--validate-tokens-audience a,b] [--requests file]',
  );
  process.exit(2);
}
const stateFile = values.state;
const audiences = (values['validate-tokens-audience'] ?? '').split(',').filter(Boolean);

/** A refusal as the Go providers send it: a plain error, which grpc-go reports as UNKNOWN. */
class Refused extends Error {}

/** Go's json.Unmarshal into map[string]string: "null" is an empty map, "" is an error. */
function goStringMap(what: string, text: string): Record<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Refused(`failed to unmarshal ${what}, error: ${(e as Error).message}`);
  }
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
    throw new Refused(
      `failed to unmarshal ${what}, error: json: cannot unmarshal into Go value of type map[string]string`,
    );
  return v as Record<string, string>;
}

function check(call: ServerUnaryCall<unknown, unknown>): void {
  // secrets-store-csi-driver test/e2eprovider/server/server.go:80-89 — every RPC, Version too.
  const authority = call.getHost();
  if (authority !== 'localhost') throw new Refused(`want authority localhost, got [${authority}]`);
}

function parse(req: MountRequest__Output): { attributes: Record<string, string>; permission: number } {
  // e2eprovider server.go:138-146 and vault-csi-provider internal/config/config.go:114-130.
  const attributes = goStringMap('attributes', req.attributes);
  goStringMap('secrets', req.secrets);
  const permission = Number(req.permission);
  if (req.permission.trim() === '' || !/^\s*\d+\s*$/.test(req.permission) || permission > 0xffffffff) {
    throw new Refused(
      `failed to unmarshal file permission, error: ${req.permission.trim() === '' ? 'unexpected end of JSON input' : `json: cannot unmarshal ${req.permission} into Go value of type fs.FileMode`}`,
    );
  }
  // e2eprovider server.go:147-149 ("missing target path"); vault-csi-provider config.go:199-200
  // ("missing target path field"). Neither writes there: only its presence is checked.
  if (req.targetPath === '') throw new Refused('missing target path');
  // vault-csi-provider config.go:171-183: tokens, when present, must be {aud: {token, expirationTimestamp}}.
  const rawTokens = attributes['csi.storage.k8s.io/serviceAccount.tokens'];
  let tokens: Record<string, { token?: unknown }> | undefined;
  if (rawTokens) {
    try {
      tokens = JSON.parse(rawTokens) as Record<string, { token?: unknown }>;
    } catch (e) {
      throw new Refused(`failed to unmarshal service account tokens: ${(e as Error).message}`);
    }
  }
  // e2eprovider server.go:192-197, 262-276 (when VALIDATE_TOKENS_AUDIENCE is set).
  if (audiences.length) {
    if (!rawTokens) throw new Refused('failed to validate token, error: service account tokens is not set');
    for (const a of audiences)
      if (typeof tokens?.[a]?.token !== 'string' || !tokens[a].token)
        throw new Refused(`failed to validate token, error: service account token for audience ${a} is not set`);
  }
  // vault-csi-provider internal/auth/kubernetes_jwt.go:64-94: without a token it calls
  // TokenRequest itself in pod.namespace for serviceAccount.name — both must be there.
  for (const k of ['csi.storage.k8s.io/pod.namespace', 'csi.storage.k8s.io/serviceAccount.name']) {
    if (!attributes[k])
      throw new Refused(`failed to create a service account token for requesting pod: attribute ${k} is empty`);
  }
  return { attributes, permission };
}

function record(call: ServerUnaryCall<MountRequest__Output, MountResponse>): void {
  if (!values.requests) return;
  const req = call.request;
  let attributes: Record<string, string> = {};
  try {
    attributes = JSON.parse(req.attributes) as Record<string, string>;
  } catch {
    /* recorded as no attributes */
  }
  let secrets: string[] = [];
  try {
    secrets = Object.keys((JSON.parse(req.secrets) as Record<string, string> | null) ?? {});
  } catch {
    /* as above */
  }
  const tokens = attributes['csi.storage.k8s.io/serviceAccount.tokens'];
  const entry: RecordedMount = {
    authority: call.getHost(),
    targetPath: req.targetPath,
    permission: req.permission,
    secrets,
    currentObjectVersions: req.currentObjectVersion.map((o) => ({ id: o.id, version: o.version })),
    attributeNames: Object.keys(attributes).sort(),
    podNamespace: attributes['csi.storage.k8s.io/pod.namespace'],
    serviceAccountName: attributes['csi.storage.k8s.io/serviceAccount.name'],
    ...(tokens ? { tokenAudiences: Object.keys(JSON.parse(tokens) as object).sort() } : {}),
  };
  appendFileSync(values.requests, JSON.stringify(entry) + '\n');
}

async function mount(
  call: ServerUnaryCall<MountRequest__Output, MountResponse>,
  signal: AbortSignal,
): Promise<[MountResponse, Metadata?]> {
  check(call);
  const { attributes, permission } = parse(call.request);
  // This provider's own parameter; it refuses others, as a provider should.
  const unknown = Object.keys(attributes).filter((k) => k !== 'prefix' && !k.startsWith('csi.storage.k8s.io/'));
  if (unknown.length)
    throw new ProviderError(
      'InvalidArgument',
      `unknown parameter(s): ${unknown.join(', ')} (this provider takes only 'prefix')`,
    );
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
  if (state.hangMs) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, state.hangMs);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  if (signal.aborted) throw new ProviderError('DeadlineExceeded', 'the caller went away');
  if (state.fail) throw new ProviderError(state.fail.code, state.fail.message, 'ExampleFailure');
  const chosen = Object.entries(state.files).filter(([path]) => path.startsWith(attributes.prefix ?? ''));
  const res = toMountResponse(
    {
      files: chosen.map(([path, contents]) => ({ path, contents })),
      objectVersions: chosen.map(([path, contents]) => ({ id: `file/${path}`, version: String(contents.length) })),
    },
    permission,
  );
  if (!state.expiresOn) return [res];
  const trailer = new Metadata();
  trailer.set(
    OBJECT_EXPIRY_METADATA_KEY,
    encodeExpiry(Object.fromEntries(Object.entries(state.expiresOn).map(([path, t]) => [`file/${path}`, new Date(t)]))),
  );
  return [res, trailer];
}

const server = new Server();
server.addService(providerService, {
  Version(call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
    try {
      check(call);
      callback(null, {
        version: API_VERSION,
        runtimeName: 'secret-store-sync-strict-provider',
        runtimeVersion: '0.1.0',
      });
    } catch (e) {
      callback({ code: status.UNKNOWN, details: (e as Error).message });
    }
  },
  Mount(call: ServerUnaryCall<MountRequest__Output, MountResponse>, callback: sendUnaryData<MountResponse>) {
    const ctl = new AbortController();
    call.on('cancelled', () => ctl.abort());
    record(call);
    mount(call, ctl.signal).then(
      ([res, trailer]) => callback(null, res, trailer),
      (e: unknown) =>
        callback(
          e instanceof ProviderError ? e.toServiceError() : { code: status.UNKNOWN, details: (e as Error).message },
        ),
    );
  },
});
const path = socketPath(values.endpoint);
if (existsSync(path)) unlinkSync(path);
await new Promise<void>((resolve, reject) =>
  server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () =>
    server.tryShutdown(() => {
      if (existsSync(path)) unlinkSync(path);
      process.exit(0);
    }),
  );
}
