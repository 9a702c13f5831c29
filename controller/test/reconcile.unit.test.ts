// reconcile as a table: each row a situation a user would notice — what the provider answers, what
// Secret is already there, what the SecretSync asks — and the decision: the status reason, whether
// and how the Secret was written, what it holds afterwards, and what should happen next. The hash,
// the shared-mount layer, the token cache and the provider-name check are the real ones; the
// provider's answer and the Secret store are fakes that record what they were asked.
import type { CoreV1Api } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { SecretProviderClass, SecretSync } from '../src/api.js';
import type { Config } from '../src/config.js';
import { ChangeIndex } from '../src/change-index.js';
import { Hasher } from '../src/hash.js';
import { createLogger, type Logger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { Providers, type MountAnswer, type MountInput } from '../src/provider.js';
import type { Failure, Text } from '../src/messages.js';
import { SyncError, type FailureKind, type Retry } from '../src/reasons.js';
import { reconcile, type ReconcileDeps } from '../src/reconcile.js';
import type { DesiredSecret, SecretWriter } from '../src/secret-writer.js';
import { SharedMounts } from '../src/shared-mounts.js';
import { nextStatus } from '../src/status.js';
import { logOutcome } from '../src/sync-log.js';
import { TokenCache } from '../src/tokens.js';
import { secretProviderClass, secretSync, type SecretSyncOptions } from '../../test/helpers/fixtures.js';

const metrics = createMetrics();
const UID = 'u-app';

/** What the provider answers: file contents by path, or a failure. */
type Answer =
  { files: Record<string, string>; expiry?: Record<string, Date>; changeKeys?: Record<string, string> } | Error;

/** A provider whose Mount answers from `answer`, with the real provider-name check. */
class FakeProviders extends Providers {
  calls = 0;
  inputs: MountInput[] = [];
  constructor(public answer: Answer) {
    super('/nonexistent', 1_000, 1 << 20, metrics);
  }
  override async mount(input: MountInput): Promise<MountAnswer> {
    this.checkName(input.provider);
    this.calls++;
    this.inputs.push(input);
    if (this.answer instanceof Error) throw this.answer;
    const files = Object.entries(this.answer.files).map(([path, c]) => ({
      path,
      mode: 0o644,
      contents: Buffer.from(c),
    }));
    return {
      files,
      objectVersion: files.map((f) => ({ id: `secret/${f.path}`, version: String(f.contents.length) })),
      error: null,
      ...(this.answer.expiry ? { expiry: { expiresOn: this.answer.expiry, dropped: 0 } } : {}),
      ...(this.answer.changeKeys ? { changeKeys: { keys: this.answer.changeKeys, dropped: 0 } } : {}),
    };
  }
}

/** The one Secret of the namespace, as the apiserver's ownership tests would treat it. */
interface StoredSecret {
  owner: string;
  data: Record<string, string>;
}

/** A failure of any text: these fakes stand for any of the catalog's. */
const failure = (kind: FailureKind, text: string, retry: Retry = 'backoff'): Failure => ({
  kind,
  retry,
  text: text as Text,
});

/** Records each write's mode; refuses a Secret another owner holds, as the JSON-patch tests do. */
class FakeWriter {
  modes: string[] = [];
  constructor(
    public secret: StoredSecret | undefined,
    private readonly fail?: Error,
  ) {}
  async write(ss: SecretSync, desired: DesiredSecret, mode: 'create' | 'update' | 'reassert') {
    this.modes.push(mode);
    if (this.fail) throw this.fail;
    const data = Object.fromEntries(Object.entries(desired.data).map(([k, v]) => [k, v.toString()]));
    if (this.secret && this.secret.owner !== ss.metadata.uid)
      throw new SyncError(failure('invalidLabel', `Secret '${ss.metadata.name}' exists but is not ours`, 'slow'));
    if (!this.secret) {
      this.secret = { owner: ss.metadata.uid, data };
      return 'created' as const;
    }
    const same = JSON.stringify(this.secret.data) === JSON.stringify(data);
    this.secret = { owner: ss.metadata.uid, data };
    return mode === 'reassert' && same ? ('unchanged' as const) : ('updated' as const);
  }
}

interface World {
  providers: FakeProviders;
  writer: FakeWriter;
  warnings: string[];
  deps: ReconcileDeps;
}

function world(answer: Answer, opts: { secret?: StoredSecret; writeFails?: Error; spc?: SecretProviderClass | null }) {
  const spc = opts.spc === null ? undefined : (opts.spc ?? spcOf('test', { a: '1' }));
  const providers = new FakeProviders(answer);
  const writer = new FakeWriter(opts.secret, opts.writeFails);
  const warnings: string[] = [];
  const note = () => undefined;
  const log = { info: note, error: note, warn: (m: string) => warnings.push(m) } as unknown as Logger;
  const cfg = {
    podName: 'manager-0',
    podUid: 'u-manager',
    providerTokenAudiences: new Map(),
    allowedSecretTypes: ['Opaque', 'kubernetes.io/tls'],
  } as unknown as Config;
  const deps: ReconcileDeps = {
    cfg,
    spc: async (ns, name) => (spc && spc.metadata.namespace === ns && spc.metadata.name === name ? spc : undefined),
    tokens: new TokenCache({} as CoreV1Api, 3_600, metrics),
    providers,
    mounts: new SharedMounts(0),
    hasher: new Hasher(Buffer.alloc(32, 7)),
    writer: writer as unknown as SecretWriter,
    log,
    changes: new ChangeIndex({ perSecretSync: 10, total: 100 }),
  };
  return { providers, writer, warnings, deps } satisfies World;
}

const app = (o: Partial<SecretSyncOptions> = {}) => secretSync({ name: 'app', namespace: 'n', uid: UID, ...o });
const ours = (data: Record<string, string>): StoredSecret => ({ owner: UID, data });
const spcOf = (provider: string, parameters?: Record<string, string>) =>
  secretProviderClass({ name: 'good', namespace: 'n', provider, parameters });

/** The situation: all optional; by default app(), class 'good', no Secret yet, the provider returns foo = v1. */
interface Given {
  ss?: SecretSync;
  /** A sync that already succeeded before this one (files default foo = v1, SecretSync default app()). */
  earlier?: { files?: Record<string, string>; ss?: SecretSync };
  /** What happened to the Secret between the earlier sync and this one. */
  meanwhile?: 'deleted' | 'edited';
  /** A Secret already there before the first sync. */
  secret?: StoredSecret;
  /** The class the SecretSync names; null: there is none. */
  spc?: SecretProviderClass | null;
  answer?: Answer;
  writeFails?: Error;
}

/** The decision: the status reason, the writes (default none), the Secret after (default none). */
interface Then {
  reason: string;
  /** A failure's retry (next: backoff); none means next: synced. */
  retry?: Retry;
  writes?: string[];
  after?: StoredSecret;
  /** Whether the provider was asked; default yes. */
  asked?: boolean;
}

const CHANGED = 'UpdateValueChangeOrForceUpdateSucceeded';
const UNCHANGED = 'UpdateNoValueChangeSucceeded';
const V1 = ours({ key: 'v1' });
const providerDown = new SyncError(failure('provider', "provider 'test' failed: vault unreachable"), {
  provider: 'test',
});

const rows: [string, Given, Then][] = [
  ['first sync creates the Secret', {}, { reason: 'CreateSucceeded', writes: ['create'], after: V1 }],
  [
    'an unchanged value writes nothing (a no-op re-assert)',
    { earlier: {} },
    { reason: UNCHANGED, writes: ['reassert'], after: V1 },
  ],
  [
    'a changed value updates the Secret',
    { earlier: {}, answer: { files: { foo: 'v2' } } },
    { reason: CHANGED, writes: ['update'], after: ours({ key: 'v2' }) },
  ],
  [
    'a Secret deleted by hand is created again',
    { earlier: {}, meanwhile: 'deleted' },
    { reason: CHANGED, writes: ['reassert'], after: V1 },
  ],
  [
    "a Secret edited by hand gets its source's value back",
    { earlier: {}, meanwhile: 'edited' },
    { reason: CHANGED, writes: ['reassert'], after: V1 },
  ],
  [
    'a new forceSynchronization value writes the Secret although nothing else changed',
    { earlier: { ss: app({ forceSynchronization: 'one' }) }, ss: app({ forceSynchronization: 'two' }) },
    { reason: CHANGED, writes: ['update'], after: V1 },
  ],
  [
    'the same forceSynchronization value again writes nothing',
    { earlier: { ss: app({ forceSynchronization: 'one' }) }, ss: app({ forceSynchronization: 'one' }) },
    { reason: UNCHANGED, writes: ['reassert'], after: V1 },
  ],
  [
    'a new key mapped in the SecretSync updates the Secret',
    {
      earlier: { files: { foo: 'v1', bar: 'b' } },
      ss: app({ data: { key: 'foo', other: 'bar' } }),
      answer: { files: { foo: 'v1', bar: 'b' } },
    },
    { reason: CHANGED, writes: ['update'], after: ours({ key: 'v1', other: 'b' }) },
  ],
  [
    'a provider failure keeps the Secret, retried with backoff',
    { earlier: {}, answer: providerDown },
    { reason: 'UpdateFailedProviderError', retry: 'backoff', after: V1 },
  ],
  [
    'a provider failure before any Secret writes nothing',
    { answer: providerDown },
    { reason: 'CreateFailedProviderError', retry: 'backoff' },
  ],
  [
    'a Secret of the same name that is not ours is refused and left as it is',
    { secret: { owner: 'someone-else', data: { theirs: 'x' } } },
    {
      reason: 'CreateFailedInvalidLabel',
      retry: 'slow',
      writes: ['create'],
      after: { owner: 'someone-else', data: { theirs: 'x' } },
    },
  ],
  [
    'a missing SecretProviderClass: the provider is not asked',
    { spc: null },
    { reason: 'ControllerSpcError', retry: 'slow', asked: false },
  ],
  [
    'a SecretProviderClass without parameters',
    { spc: spcOf('test') },
    { reason: 'ControllerSpcError', retry: 'slow', asked: false },
  ],
  [
    'a provider name that could not be a socket',
    { spc: spcOf('../etc', { a: '1' }) },
    { reason: 'ControllerSpcError', retry: 'slow', asked: false },
  ],
  [
    "a label in the manager's reserved prefix",
    { ss: app({ labels: { 'secrets-store.sync.x-k8s.io/owner-uid': 'x' } }) },
    { reason: 'UserInputValidationFailed', retry: 'slow', asked: false },
  ],
  [
    'a Secret type the operator did not allow',
    { ss: app({ type: 'kubernetes.io/dockerconfigjson' }) },
    { reason: 'UserInputValidationFailed', retry: 'slow', asked: false },
  ],
  [
    'a sourcePath the provider did not return: nothing written',
    { ss: app({ data: { key: 'missing' } }) },
    { reason: 'UserInputValidationFailed', retry: 'slow' },
  ],
  [
    'an unexpected error while writing, retried with backoff',
    { writeFails: new TypeError('cannot read properties of undefined') },
    { reason: 'ControllerInternalError', retry: 'backoff', writes: ['create'] },
  ],
];

/** The SecretSync as the manager would see it after a successful sync of `answer`. */
async function syncedOnce(ss: SecretSync, files: Record<string, string>, w: World): Promise<SecretSync> {
  w.providers.answer = { files };
  const { outcome } = await reconcile(ss, w.deps);
  expect(outcome).toMatchObject({ ok: true });
  return { ...ss, status: nextStatus(ss, outcome) };
}

const cases = rows.map(([name, given, then]) => [`${name}: ${then.reason}`, given, then] as const);

test.each(cases)('%s', async (_, given, then) => {
  const answer = given.answer ?? { files: { foo: 'v1' } };
  const w = world(answer, { secret: given.secret, writeFails: given.writeFails, spc: given.spc });
  let ss = given.ss ?? app();
  if (given.earlier) {
    const before = await syncedOnce(given.earlier.ss ?? app(), given.earlier.files ?? { foo: 'v1' }, w);
    ss = { ...ss, status: before.status };
    w.providers.answer = answer;
    w.providers.calls = 0;
    w.writer.modes = [];
  }
  if (given.meanwhile === 'deleted') w.writer.secret = undefined;
  if (given.meanwhile === 'edited') w.writer.secret = ours({ key: 'changed by hand' });

  const { outcome, next } = await reconcile(ss, w.deps);

  expect(outcome.reason).toBe(then.reason);
  expect(next).toEqual(then.retry ? { kind: 'backoff', retry: then.retry } : { kind: 'synced' });
  expect(w.writer.modes).toEqual(then.writes ?? []);
  expect(w.writer.secret).toEqual(then.after);
  expect(w.providers.calls > 0).toBe(then.asked ?? true);
});

test("a failure's advice names the provider that failed", async () => {
  const w = world(
    new SyncError(failure('provider', 'no answer'), { provider: 'other', socket: '/run/other.sock' }),
    {},
  );
  const { outcome } = await reconcile(app(), w.deps);
  expect(outcome).toMatchObject({
    ok: false,
    kind: 'provider',
    message: 'no answer',
    advice: expect.stringContaining("provider 'other' on /run/other.sock") as unknown,
  });
});

test("a success carries the provider's versions and the hash it writes; the hash moves with the value", async () => {
  const w = world({ files: { foo: 'v1' } }, {});
  const first = await reconcile(app(), w.deps);
  w.providers.answer = { files: { foo: 'v22' } };
  const second = await reconcile(app(), w.deps);
  expect(first.outcome).toMatchObject({ ok: true, versions: [{ id: 'secret/foo', version: '2' }], wrote: true });
  expect(second.outcome).toMatchObject({ ok: true, versions: [{ id: 'secret/foo', version: '3' }] });
  const hash = (r: typeof first) => (r.outcome.ok ? r.outcome.hash : undefined);
  expect(hash(first)).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
  expect(hash(second)).not.toBe(hash(first));
});

test("expiring objects: the provider's expiry trailer is kept for the objects it returned, the rest is logged", async () => {
  const soon = new Date('2027-01-01T00:00:00Z');
  const w = world({ files: { foo: 'v1' }, expiry: { 'secret/foo': soon, 'secret/stray': soon } }, {});
  const { outcome, next } = await reconcile(app(), w.deps);
  expect(outcome).toMatchObject({ ok: true, reason: 'CreateSucceeded', expiresOn: { 'secret/foo': soon } });
  // The next check is scheduled from the same expiry times.
  expect(next).toEqual({ kind: 'synced', expiresOn: { 'secret/foo': soon } });
  expect(outcome.ok && Object.keys(outcome.expiresOn ?? {})).toEqual(['secret/foo']);
  expect(w.warnings).toEqual([expect.stringContaining("ignored entries of the provider's expiry trailer")]);
});

test("a successful Mount's change keys reach the SecretSync from a notice; a failed Mount keeps them", async () => {
  const w = world({ files: { foo: 'v1' }, changeKeys: { 'secret/foo': 'k-foo', 'secret/gone': 'k-gone' } }, {});
  const changes = w.deps.changes as ChangeIndex;
  await reconcile(app(), w.deps);
  expect(changes.noticed('test', ['k-foo'], 1)).toEqual(['n/app']);
  // Only keys of objects the answer returned.
  expect(changes.noticed('test', ['k-gone'], 1)).toEqual([]);
  w.providers.answer = new Error('provider down');
  expect((await reconcile(app(), w.deps)).outcome.ok).toBe(false);
  expect(changes.noticed('test', ['k-foo'], 2)).toEqual(['n/app']);
  // The next success replaces them.
  w.providers.answer = { files: { foo: 'v2' }, changeKeys: { 'secret/foo': 'k-foo-2' } };
  await reconcile(app(), w.deps);
  expect(changes.noticed('test', ['k-foo'], 3)).toEqual([]);
  expect(changes.noticed('test', ['k-foo-2'], 3)).toEqual(['n/app']);
});

test('a synced SecretSync asked afresh (an edit, a forceSynchronization, a retry) asks the provider for a fresh read; a first sync, a rotation and a notice do not', async () => {
  const w = world({ files: { foo: 'v1' } }, {});
  const synced = app({ generation: 2, status: { syncHash: 'hmac-sha256:old' } });
  await reconcile(app(), w.deps);
  await reconcile(synced, w.deps, { kind: 'rotation' });
  await reconcile(synced, w.deps, { kind: 'changed', after: w.deps.mounts.mark() });
  await reconcile(synced, w.deps);
  expect(w.providers.inputs.map((i) => i.fresh)).toEqual([false, false, false, true]);
});

test('a provider without an expiry trailer leaves expiresOn out', async () => {
  const w = world({ files: { foo: 'v1' } }, {});
  const { outcome } = await reconcile(app(), w.deps);
  expect(outcome.ok && 'expiresOn' in outcome).toBe(false);
});

/** The manager's log line for one reconcile of app(), as the JSON it writes. */
async function logLineOf(answer: Answer): Promise<Record<string, unknown>> {
  const { outcome } = await reconcile(app(), world(answer, {}).deps);
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  logOutcome(createLogger('info', new winston.transports.Stream({ stream })), {
    secretSync: 'n/app',
    outcome,
    durationMs: 5,
  });
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

test.each([
  [
    'a provider that did not answer in time',
    new SyncError(failure('provider', "provider 'test': DEADLINE_EXCEEDED: did not answer within 1 s"), {
      provider: 'test',
      upstream: { code: 'DEADLINE_EXCEEDED' },
      timedOut: "provider 'test'",
    }),
    { upstream: { code: 'DEADLINE_EXCEEDED' }, timedOut: "provider 'test'" },
  ],
  [
    'a provider refused by Key Vault',
    new SyncError(failure('provider', "provider 'test': PERMISSION_DENIED: denied (ForbiddenByRbac)"), {
      provider: 'test',
      upstream: { code: 'PERMISSION_DENIED', reason: 'ForbiddenByRbac' },
    }),
    { upstream: { code: 'PERMISSION_DENIED', reason: 'ForbiddenByRbac' } },
  ],
  [
    'a token the apiserver would not mint',
    new SyncError(failure('internal', "the manager may not mint tokens for ServiceAccount 'default'"), {
      upstream: { code: 403 },
    }),
    { upstream: { code: 403 } },
  ],
])("the failure's log line carries what failed upstream as fields: %s", async (_, failure, fields) => {
  const line = await logLineOf(failure);
  expect(line).toMatchObject({
    level: 'warn',
    message: 'sync failed',
    component: 'manager',
    secretSync: 'n/app',
    error: failure.message,
    ...fields,
  });
  expect('timedOut' in line).toBe('timedOut' in fields);
});

test('a success logs the versions synced, and no failure fields', async () => {
  const line = await logLineOf({ files: { foo: 'v1' } });
  expect(line).toMatchObject({ level: 'info', message: 'synced', reason: 'CreateSucceeded', wrote: true });
  expect(line).not.toHaveProperty('upstream');
  expect(line).not.toHaveProperty('timedOut');
});

test("each provider's Mount carries tokens for its own audiences only; a provider without any gets none", async () => {
  const w = world({ files: { foo: 'v1' } }, {});
  const minted: string[][] = [];
  const core = {
    createNamespacedServiceAccountToken: async (req: { body: { spec: { audiences: string[] } } }) => {
      minted.push(req.body.spec.audiences);
      return {
        status: { token: `jwt-for-${req.body.spec.audiences[0]}`, expirationTimestamp: new Date(Date.now() + 600_000) },
      };
    },
  } as unknown as CoreV1Api;
  w.deps.tokens = new TokenCache(core, 600, metrics);
  w.deps.cfg = {
    ...w.deps.cfg,
    providerTokenAudiences: new Map([
      ['azure', ['api://AzureADTokenExchange']],
      ['vault', ['vault']],
    ]),
  };
  const audiencesSent = async (provider: string) => {
    const classOf = spcOf(provider, { a: '1' });
    w.deps.spc = async () => classOf;
    expect((await reconcile(app({ spc: provider }), w.deps)).outcome.ok).toBe(true);
    const tokens = w.providers.inputs.at(-1)!.request.tokens;
    return tokens && Object.keys(tokens);
  };
  expect(await audiencesSent('vault')).toEqual(['vault']);
  expect(await audiencesSent('azure')).toEqual(['api://AzureADTokenExchange']);
  expect(await audiencesSent('other')).toEqual([]);
  expect(minted).toEqual([['vault'], ['api://AzureADTokenExchange']]);
});
