// What a provider returns is a tenant's bytes (any tenant can store anything in their own vault):
// the manager parses it on its one thread, which serves every namespace. Each case below stalled
// that thread before; now it is refused, named on the SecretSync, while the others keep syncing.
import { Metadata, Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  PARTIAL_FAILURES_METADATA_KEY,
  providerService,
  type MountRequest__Output,
  type MountResponse,
} from '@secret-store-sync/proto';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { opensslPfx, withMacIterations } from '../../test/helpers/pfx.js';
import { startTestProvider, type TestProvider } from '../../test/helpers/provider.js';
import { secretProviderClass, secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const k = kube();
const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
let ns: Awaited<ReturnType<typeof tempNamespace>>;
let provider: TestProvider;
let manager: RunningManager;
/** A third-party provider answering every Mount well, with the trailer its class's `mode` names. */
const hostile = new Server();
const TRAILERS: Record<string, () => string> = {
  // JSON.parse of it threw outside any catch: the manager process crashed.
  malformed: () => '[{"id": "secret/a", "code":',
  // Under HTTP/2's 64 KiB after compression, so it arrives: over the 32 KiB a trailer may hold.
  large: () => randomBytes(30_000).toString('base64'),
  // 200 KB of one letter: over 64 KiB even compressed, so nghttp2 drops it and the answer's
  // trailers never arrive; the Mount waited for its whole deadline.
  lost: () => 'y'.repeat(200_000),
};

async function secretSync(
  name: string,
  type: string,
  data: { sourcePath: string; targetKey: string }[],
  spc = 'files',
) {
  await k.custom.createNamespacedCustomObject({
    ...co,
    namespace: ns.name,
    body: secretSyncBody({ name, spc, type, data }),
  });
}

async function providerClass(name: string, provider: string, parameters: Record<string, string>) {
  await k.custom.createNamespacedCustomObject({
    group: 'secrets-store.csi.x-k8s.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'secretproviderclasses',
    body: secretProviderClass({ name, provider, parameters }),
  });
}

const readyOf = async (name: string) =>
  (
    (await k.custom.getNamespacedCustomObject({ ...co, namespace: ns.name, name })) as SecretSync
  ).status?.conditions?.find((c) => c.type === 'Ready');

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'hostile');
  provider = await startTestProvider('files');
  // The 104-byte attack of issue 24 in spirit: a real PFX whose MAC asks for 2^31 - 1 iterations.
  // node-forge ran them all before failing: 1.7 µs each, 2^25 stalled every sync and /healthz for
  // 60-100 s per attempt (a liveness-probe crash loop), and 2^31 - 1 is about an hour.
  provider.setState({
    files: { pfx: withMacIterations(opensslPfx(), 2 ** 31 - 1).toString('base64'), plain: 'plain-value' },
  });
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
  await providerClass('files', 'files', { prefix: '' });
  hostile.addService(providerService, {
    Version: (_call: unknown, cb: sendUnaryData<unknown>) =>
      cb(null, { version: 'v1alpha1', runtimeName: 'hostile', runtimeVersion: '0' }),
    Mount: (call: ServerUnaryCall<MountRequest__Output, MountResponse>, cb: sendUnaryData<MountResponse>) => {
      const mode = (JSON.parse(call.request.attributes) as { mode: string }).mode;
      const trailer = new Metadata();
      trailer.set(PARTIAL_FAILURES_METADATA_KEY, TRAILERS[mode]!());
      cb(
        null,
        { objectVersion: [{ id: 'secret/a', version: '1' }], files: [{ path: 'a', contents: Buffer.from('a-value') }] },
        trailer,
      );
    },
  });
  await new Promise<void>((resolve, reject) =>
    hostile.bindAsync(`unix:${join(provider.socketDir, 'hostile.sock')}`, ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  manager = await startManager({
    namespace: ns.name,
    providerDir: provider.socketDir,
    args: ['--rotation-poll-interval-seconds=3600', '--workers=2'],
  });
});

afterAll(async () => {
  await manager?.stop();
  await provider?.stop();
  hostile.forceShutdown();
  await ns?.dispose();
});

test('a PKCS#12 asking for 2^31 - 1 key-derivation iterations is refused by name, and the other SecretSyncs sync meanwhile', async () => {
  await secretSync('hostile-tls', 'kubernetes.io/tls', [
    { sourcePath: 'pfx', targetKey: 'tls.crt' },
    { sourcePath: 'pfx', targetKey: 'tls.key' },
  ]);
  await secretSync('after', 'Opaque', [{ sourcePath: 'plain', targetKey: 'key' }]);
  const refused = await eventually(
    async () => {
      const ready = await readyOf('hostile-tls');
      return ready?.reason === 'UserInputValidationFailed' ? ready : undefined;
    },
    60_000,
    'hostile-tls to be refused',
  );
  expect(refused.message).toContain(
    "the provider's file 'pfx' is refused: the PKCS#12 file asks for 2147483647 key-derivation iterations",
  );
  await eventually(
    async () => ((await readyOf('after'))?.status === 'True' ? true : undefined),
    60_000,
    'the other SecretSync to sync',
  );
  const secret = await k.core.readNamespacedSecret({ name: 'after', namespace: ns.name });
  expect(Buffer.from(secret.data!.key!, 'base64').toString()).toBe('plain-value');
  expect((await fetch(manager.healthUrl, { signal: AbortSignal.timeout(2_000) })).status).toBe(200);
});

test.each([
  ['a malformed partial-failures trailer (it crashed the manager)', 'malformed', 'MalformedTrailer'],
  ['a trailer over 32 KiB', 'large', 'TrailerTooLarge'],
  ['a trailer HTTP/2 drops (the Mount waited for its deadline)', 'lost', 'TrailerLost'],
])(
  "a third-party provider's %s fails that SecretSync by name; the manager lives on and others sync",
  async (_what, mode, reason) => {
    await providerClass(`hostile-${mode}`, 'hostile', { mode });
    await secretSync(`hostile-${mode}`, 'Opaque', [{ sourcePath: 'a', targetKey: 'a' }], `hostile-${mode}`);
    await secretSync(`beside-${mode}`, 'Opaque', [{ sourcePath: 'plain', targetKey: 'key' }]);
    const failed = await eventually(
      async () => {
        const ready = await readyOf(`hostile-${mode}`);
        return ready?.reason === 'CreateFailedProviderError' ? ready : undefined;
      },
      60_000,
      `hostile-${mode} to fail`,
    );
    expect(failed.message).toContain(`(${reason})`);
    await eventually(
      async () => ((await readyOf(`beside-${mode}`))?.status === 'True' ? true : undefined),
      60_000,
      'the other SecretSync to sync',
    );
    expect((await fetch(manager.healthUrl, { signal: AbortSignal.timeout(2_000) })).status).toBe(200);
  },
);
