// Change notices end to end (issue #28): the manager as it ships, the real apiserver, and a
// provider built with the kit's `serve` in this process, whose ChangeSource the test drives. With a
// one-hour poll, a notice puts the new version in the Secret within seconds; a notice for a key no
// Mount named costs no Mount; a storm for one object costs a few Mounts and no write when the
// version is already synced; a provider without the service is polled as before; a restarted
// provider's stream is reopened; and only the leader watches.
import {
  serve,
  type ChangeListener,
  type ChangeNotice,
  type ChangeSource,
  type ChangeState,
  type RunningProvider,
} from '@secret-store-sync/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SPC_GROUP, SPC_PLURAL, SPC_VERSION, SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../src/api.js';
import { CHANGE_LOGS } from '../src/messages.js';
import { eventually, kube, tempNamespace } from '../../test/helpers/kube.js';
import { startManager, type RunningManager } from '../../test/helpers/manager.js';
import { secretProviderClass, secretSync } from '../../test/helpers/fixtures.js';

const k = kube();
let ns: Awaited<ReturnType<typeof tempNamespace>>;
const managers: RunningManager[] = [];
const providers: TestProvider[] = [];

/** A change source the test drives: what the provider's queue reader would be. */
class TestSource implements ChangeSource {
  readonly listeners = new Set<ChangeListener>();
  current(): ChangeState {
    return { receiving: true };
  }
  watch(l: ChangeListener) {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }
  emit(n: ChangeNotice) {
    for (const l of this.listeners) l.changed(n);
  }
}

/** A provider on `<dir>/<name>.sock` serving one object, `foo`, whose change key is `key-foo`. */
class TestProvider {
  value = 'v1';
  mounts = 0;
  running?: RunningProvider;
  constructor(
    readonly dir: string,
    readonly name: string,
    readonly source?: TestSource,
  ) {}
  async start(): Promise<void> {
    this.running = await serve(
      {
        runtimeName: 'change-notices-test',
        runtimeVersion: '0',
        mount: () => {
          this.mounts++;
          return Promise.resolve({
            files: [{ path: 'foo', contents: this.value }],
            objectVersions: [{ id: 'foo', version: this.value }],
            changeKeys: { foo: 'key-foo' },
          });
        },
        ...(this.source ? { changes: this.source } : {}),
      },
      { endpoint: `unix://${join(this.dir, `${this.name}.sock`)}`, shutdownGraceMs: 1_000 },
    );
  }
  stop(): Promise<void> {
    return this.running?.stop() ?? Promise.resolve();
  }
}

async function provider(dir: string, name: string, source?: TestSource): Promise<TestProvider> {
  const p = new TestProvider(dir, name, source);
  await p.start();
  providers.push(p);
  return p;
}

async function manager(dir: string, args: string[], o: { asAdmin?: boolean; pod?: string } = {}) {
  const m = await startManager({
    namespace: ns.name,
    providerDir: dir,
    args,
    ...(o.asAdmin ? { asAdmin: true } : {}),
    ...(o.pod ? { env: { POD_NAME: o.pod } } : {}),
  });
  managers.push(m);
  return m;
}

async function create(name: string, spc: string, controllerName?: string): Promise<void> {
  await k.custom.createNamespacedCustomObject({
    group: SYNC_GROUP,
    version: SYNC_VERSION,
    plural: SYNC_PLURAL,
    namespace: ns.name,
    body: secretSync({ name, spc, data: { key: 'foo' }, ...(controllerName ? { controllerName } : {}) }),
  });
}

async function createClass(name: string, provider: string): Promise<void> {
  await k.custom.createNamespacedCustomObject({
    group: SPC_GROUP,
    version: SPC_VERSION,
    plural: SPC_PLURAL,
    namespace: ns.name,
    body: secretProviderClass({ name, provider, parameters: { objects: 'foo' } }),
  });
}

const secret = (name: string) => k.core.readNamespacedSecret({ name, namespace: ns.name });
const holds = (name: string, value: string, timeoutMs = 20_000) =>
  eventually(
    async () => {
      const s = await secret(name).catch(() => undefined);
      return Buffer.from(s?.data?.key ?? '', 'base64').toString() === value ? s : undefined;
    },
    timeoutMs,
    `Secret ${name} to hold ${value}`,
  );
/** A sample's value from the manager's /metrics, or undefined when there is no such series. */
async function sample(m: RunningManager, series: string): Promise<number | undefined> {
  const text = await m.metrics().catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
const until = (m: RunningManager, series: string, ok: (v: number | undefined) => boolean, what = series) =>
  eventually(async () => (ok(await sample(m, series)) ? true : undefined), 20_000, what);

let dir: string;
let source: TestSource;
let notify: TestProvider;
let plain: TestProvider;
let main: RunningManager;

beforeAll(async () => {
  ns = await tempNamespace(k.core, 'changes');
  dir = mkdtempSync(join(tmpdir(), 'sss-chg-'));
  source = new TestSource();
  notify = await provider(dir, 'notify', source);
  plain = await provider(dir, 'plain'); // no ObjectChanges service: answers UNIMPLEMENTED
  await createClass('notify-spc', 'notify');
  await createClass('plain-spc', 'plain');
  await eventually(
    async () =>
      (await k.core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }).catch(() => undefined)) ??
      undefined,
    30_000,
    'the default ServiceAccount',
  );
  main = await manager(dir, ['--rotation-poll-interval-seconds=3600']);
});

afterAll(async () => {
  for (const m of managers) await m.stop('SIGKILL');
  for (const p of providers) await p.stop();
  await ns?.dispose();
});

test('with a one-hour poll, a change notice puts the new version in the Secret within seconds', async () => {
  await create('one', 'notify-spc');
  await holds('one', 'v1');
  await until(main, 'secretsync_change_stream_up{provider="notify"}', (v) => v === 1);
  notify.value = 'v2';
  source.emit({ keys: ['key-foo'], kind: 'NewVersion' });
  await holds('one', 'v2');
  expect(await sample(main, 'secretsync_change_enqueued_total{provider="notify"}')).toBe(1);
});

test('a notice for a key no Mount named costs no Mount; a storm for a version already synced writes nothing', async () => {
  await holds('one', 'v2');
  const before = {
    mounts: notify.mounts,
    notices: (await sample(main, 'secretsync_change_notices_total{provider="notify"}')) ?? 0,
    unchanged: (await sample(main, 'secretsync_reconciles_total{reason="UpdateNoValueChangeSucceeded"}')) ?? 0,
    version: (await secret('one')).metadata?.resourceVersion,
  };
  for (let i = 0; i < 10; i++) source.emit({ keys: ['nobody-uses-this'], kind: 'NewVersion' });
  for (let i = 0; i < 20; i++) source.emit({ keys: ['key-foo'], kind: 'NewVersion' });
  await until(main, 'secretsync_change_notices_total{provider="notify"}', (v) => v === before.notices + 30);
  await until(
    main,
    'secretsync_reconciles_total{reason="UpdateNoValueChangeSucceeded"}',
    (v) => (v ?? 0) > before.unchanged,
  );
  await until(main, 'secretsync_queue_depth{lane="fast"}', (v) => v === 0);
  // The queue holds the SecretSync once: the twenty notices cost a Mount or two (one more when
  // notices arrive while its run is under way), the unused key none.
  expect(notify.mounts - before.mounts).toBeGreaterThanOrEqual(1);
  expect(notify.mounts - before.mounts).toBeLessThanOrEqual(3);
  expect((await secret('one')).metadata?.resourceVersion).toBe(before.version);
});

test('a provider without change notices: no stream, said once in the log, and its SecretSyncs still sync by polling', async () => {
  await until(main, 'secretsync_change_stream_up{provider="plain"}', (v) => v === 0);
  const said = main
    .logs()
    .split('\n')
    .filter((l) => l.includes(CHANGE_LOGS.unsupported) && l.includes('"level":"info"'));
  expect(said).toHaveLength(1);
  expect(said[0]).toContain('"provider":"plain"');
  // Polling, as before: a manager with a short interval picks up a new value without any notice.
  const poller = await manager(dir, ['--controller-name=poller', '--rotation-poll-interval-seconds=2']);
  await create('polled', 'plain-spc', 'poller');
  await holds('polled', 'v1');
  plain.value = 'p2';
  await holds('polled', 'p2');
  await poller.stop();
});

test("the provider restarts: the manager's stream is reopened and later notices work", async () => {
  await notify.stop();
  await notify.start();
  await until(main, 'secretsync_change_stream_up{provider="notify"}', (v) => v === 1, 'the stream to reopen');
  notify.value = 'v3';
  source.emit({ keys: ['key-foo'], kind: 'NewVersion' });
  await holds('one', 'v3');
  expect(main.logs()).toContain(CHANGE_LOGS.streamEnded);
});

test('a manager that does not lead does not watch; it watches once it leads', async () => {
  const electedDir = mkdtempSync(join(tmpdir(), 'sss-chg-le-'));
  const electedSource = new TestSource();
  await provider(electedDir, 'notify', electedSource);
  const args = [
    '--controller-name=elected',
    '--leader-elect=true',
    `--leader-election-namespace=${ns.name}`,
    '--leader-election-id=change-notices-test',
    '--lease-duration-seconds=5',
  ];
  const first = await manager(electedDir, args, { asAdmin: true, pod: 'elected-1' });
  await until(first, 'secretsync_change_stream_up{provider="notify"}', (v) => v === 1, 'the leader to watch');
  const second = await manager(electedDir, args, { asAdmin: true, pod: 'elected-2' });
  await until(second, 'secretsync_leader', (v) => v === 0, 'the second to follow');
  expect(electedSource.listeners.size).toBe(1);
  expect(await sample(second, 'secretsync_change_stream_up{provider="notify"}')).toBeUndefined();
  expect(second.logs()).not.toContain(CHANGE_LOGS.streamOpen);

  await first.stop('SIGTERM');
  await until(second, 'secretsync_change_stream_up{provider="notify"}', (v) => v === 1, 'the new leader to watch');
  await eventually(async () => (electedSource.listeners.size === 1 ? true : undefined), 10_000, 'one watcher');
});
