// The conformance checks of the optional change-notice service (changes.proto). A provider that
// answers Watch with UNIMPLEMENTED passes: its callers poll. One that serves it must keep the
// contract a caller builds on: a State first, a stream that stays open until cancelled, any number
// of watchers, change keys that name only objects its Mount returned, and, when the fixture says
// how to make a change, a notice naming the key the Mount gave.
import { credentials, status, type ClientReadableStream, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import type { MountAnswerTrailers, ProviderClient } from './client.js';
import { socketPath } from './endpoint.js';
import { errorMessage, statusName } from './errors.js';
import type { MountResponse__Output } from './generated/v1alpha1/MountResponse.js';
import type { ObjectChangesClient } from './generated/secretstoresync/changes/v1alpha1/ObjectChanges.js';
import type { WatchEvent__Output } from './generated/secretstoresync/changes/v1alpha1/WatchEvent.js';
import type { State__Output } from './generated/secretstoresync/changes/v1alpha1/State.js';
import { changesApi } from './load.js';
import { API_VERSION, CHANGE_KEY, CHANGE_KEYS_METADATA_KEY } from './wire.js';

/** How a fixture makes an object of its `valid` Mount change (the suite then waits for a notice). */
export interface ChangeCase {
  /** A command (run as given, no shell) that changes an object the `valid` Mount returns; must exit 0. */
  command: string[];
}

export type CheckKind = { advice?: boolean };
export type Check = (name: string, f: () => Promise<string>, kind?: CheckKind) => Promise<void>;
type MountAnswer = MountResponse__Output & MountAnswerTrailers;

export interface ChangeChecksOptions {
  endpoint: string;
  client: ProviderClient;
  /** The fixture's `valid` Mount. */
  mountValid: () => Promise<MountAnswer>;
  change?: ChangeCase;
  check: Check;
  /** Records a result that needs no call of its own (not served, skipped). */
  record: (result: { name: string; ok: boolean; detail: string; skipped?: boolean }) => void;
  timeoutMs: number;
}

/** How long a stream must stay open on its own: a stream that ends sooner makes its caller reconnect in a loop. */
export const STREAM_HOLD_MS = 1_000;
/** Events kept per watch; a provider that sends more is only counted, never buffered. */
const MAX_KEPT_EVENTS = 64;
/** The largest Watch message taken, as the kit's client (ProviderClient.watchChanges). */
const MAX_WATCH_MESSAGE_BYTES = 1024 * 1024;

export const NOT_SERVED = { name: 'change notices', detail: 'not served (callers poll)' } as const;
const TRAILER_CHECK = `the optional change-keys trailer, when sent, maps returned object version ids to keys`;

export async function runChangeChecks(opts: ChangeChecksOptions): Promise<void> {
  const changes = new changesApi.secretstoresync.changes.v1alpha1.ObjectChanges(
    `unix:${socketPath(opts.endpoint)}`,
    credentials.createInsecure(),
    { 'grpc.max_receive_message_length': MAX_WATCH_MESSAGE_BYTES },
  ) as ObjectChangesClient;
  const open: Watch[] = [];
  const watch = () => {
    const w = new Watch(changes);
    open.push(w);
    return w;
  };
  try {
    const first = watch();
    await first.until(() => first.events.length > 0 || first.end !== undefined, opts.timeoutMs);
    const served = !(first.events.length === 0 && first.end?.code === status.UNIMPLEMENTED);
    if (served) await streamChecks(opts, { first, watch });
    else opts.record({ ...NOT_SERVED, ok: true });
    // Advice only for a service that demonstrably answers, not for a provider that died.
    const answer = await trailerChecks(opts, { served, answers: first.events.some((e) => e.state) });
    if (served) await noticeCheck(opts, { answer, watch });
  } finally {
    for (const w of open) w.cancel();
    changes.close();
  }
}

async function streamChecks(opts: ChangeChecksOptions, w: { first: Watch; watch: () => Watch }): Promise<void> {
  const { check, timeoutMs } = opts;
  const { first } = w;
  await check('change notices: Watch answers with a State first', async () => stateFirst(first, timeoutMs));
  await check('change notices: the stream stays open until the caller cancels', async () => {
    if (await first.until(() => first.end !== undefined, STREAM_HOLD_MS))
      throw new Error(
        `the stream ended on its own (${endText(first)}): a caller then reconnects in a loop; end it only when stopping`,
      );
    return `open after ${STREAM_HOLD_MS / 1000} s`;
  });
  let second: Watch | undefined;
  await check('change notices: a second, concurrent watcher gets a State first too', async () => {
    second = w.watch();
    await second.until(() => second!.events.length > 0 || second!.end !== undefined, timeoutMs);
    const detail = stateFirst(second, timeoutMs);
    if (first.end) throw new Error(`the first watch ended (${endText(first)}) when the second began`);
    return detail;
  });
  await check('change notices: cancelled watches end, and the provider still serves', async () => {
    const cancelled = second ? [first, second] : [first];
    for (const x of cancelled) x.cancel();
    for (const x of cancelled)
      if (!(await x.until(() => x.end !== undefined, timeoutMs)))
        throw new Error(`a cancelled watch did not end within ${timeoutMs} ms`);
    const third = w.watch();
    await third.until(() => third.events.length > 0 || third.end !== undefined, timeoutMs);
    stateFirst(third, timeoutMs);
    third.cancel();
    await opts.client.version(2_000);
    return 'a new watch gets a State; Version answers';
  });
}

/** The change-keys trailer (checked whether or not the service is served, like the expiry trailer). */
async function trailerChecks(
  opts: ChangeChecksOptions,
  { served, answers }: { served: boolean; answers: boolean },
): Promise<MountAnswer | undefined> {
  let answer: MountAnswer | undefined;
  await opts.check(TRAILER_CHECK, async () => {
    answer = await opts.mountValid();
    const sent = answer.changeKeys;
    if (!sent) return 'not sent (optional)';
    if (sent.dropped > 0)
      throw new Error(
        `${sent.dropped} entries of the ${CHANGE_KEYS_METADATA_KEY} trailer are not an object id with a key of 1 to 128 printable ASCII characters`,
      );
    const ids = new Set(answer.objectVersion.map((o) => o.id));
    const stray = Object.keys(sent.keys).find((id) => !ids.has(id));
    if (stray)
      throw new Error(
        `the change-keys trailer names '${stray.slice(0, 80)}', which is not among the object versions: a caller cannot tell which mount a notice is for`,
      );
    const named = `${Object.keys(sent.keys).length} of ${ids.size} objects have a change key`;
    return served ? named : `${named}, but ObjectChanges is not served: no notice will name them`;
  });
  if (answers)
    await opts.check(
      'change notices: the Mount names a change key for its objects',
      async () => {
        if (!answer) throw new Error('the valid Mount failed');
        if (!answer.changeKeys || Object.keys(answer.changeKeys.keys).length === 0)
          throw new Error(
            `ObjectChanges is served but the valid Mount sends no ${CHANGE_KEYS_METADATA_KEY} trailer: no notice can name its objects, so callers only poll them`,
          );
        return `${Object.keys(answer.changeKeys.keys).length} keys`;
      },
      { advice: true },
    );
  return answer;
}

/** With the fixture's `change`: a change yields a notice naming a key the Mount gave. */
async function noticeCheck(
  opts: ChangeChecksOptions,
  w: { answer: MountAnswer | undefined; watch: () => Watch },
): Promise<void> {
  const name = 'change notices: a change yields a notice naming the key the Mount gave';
  if (!opts.change) {
    opts.record({ name, ok: true, skipped: true, detail: 'skipped: the fixture has no `change` case' });
    return;
  }
  const { command } = opts.change;
  await opts.check(name, async () => {
    const keys = new Set(Object.values(w.answer?.changeKeys?.keys ?? {}));
    if (keys.size === 0) throw new Error('the valid Mount named no change keys');
    const watch = w.watch();
    // Attached once it answers (its first event is checked above), so the change is after it.
    await watch.until(() => watch.events.length > 0 || watch.end !== undefined, opts.timeoutMs);
    const started = Date.now();
    await run(command, opts.timeoutMs);
    const naming = () => watch.events.find((e) => e.changed?.keys.some((k) => keys.has(k)));
    await watch.until(() => naming() !== undefined || watch.end !== undefined, opts.timeoutMs);
    if (!naming())
      throw new Error(
        `no Changed naming ${[...keys]
          .slice(0, 3)
          .map((k) => `'${k}'`)
          .join(
            ', ',
          )}${keys.size > 3 ? ', …' : ''} within ${opts.timeoutMs} ms of the change command${watch.end ? ` (the stream ended: ${endText(watch)})` : ''}`,
      );
    const changed = naming()!.changed!;
    const key = changed.keys.find((k) => keys.has(k))!;
    return `a Changed (${changed.kind.slice(0, 64) || 'no kind'}) named '${key}' ${Date.now() - started} ms after the change`;
  });
}

/** The first event of a watch must be a State; returns it as a user reads it. */
function stateFirst(w: Watch, timeoutMs: number): string {
  const e = w.events[0];
  if (!e)
    throw new Error(
      w.end ? `the stream ended (${endText(w)}) before any event` : `no event within ${timeoutMs} ms of the Watch`,
    );
  if (!e.state)
    throw new Error(
      'the first event is a Changed, not a State: a caller cannot tell whether notices flow before one arrives',
    );
  return stateText(e.state);
}

const stateText = (s: State__Output) =>
  s.receiving
    ? 'receiving'
    : `not receiving${s.reason ? `: ${s.reason.slice(0, 64)}` : ''}${s.message ? ` (${s.message.slice(0, 200)})` : ''}`;

const endText = (w: Watch) =>
  !w.end
    ? 'open'
    : `${statusName(w.end.code)}${w.end.details && w.end.code !== status.OK ? `: ${w.end.details.slice(0, 200)}` : ''}`;

/** One Watch call, its events kept (bounded) and its end recorded, with a way to wait on either. */
class Watch {
  readonly events: WatchEvent__Output[] = [];
  end: { code: status; details: string } | undefined;
  private readonly stream: ClientReadableStream<WatchEvent__Output>;
  private readonly waiters = new Set<() => void>();

  constructor(client: ObjectChangesClient) {
    this.stream = client.Watch({ version: API_VERSION });
    this.stream.on('data', (e: WatchEvent__Output) => {
      // Keys as the kit's client keeps them: a notice of invalid keys is no notice.
      if (e.changed) e.changed.keys = e.changed.keys.filter((k) => CHANGE_KEY.test(k));
      if (this.events.length < MAX_KEPT_EVENTS) this.events.push(e);
      this.wake();
    });
    // The status follows the error event, which must have a listener.
    this.stream.on('error', (_e: ServiceError) => undefined);
    this.stream.on('status', (s: StatusObject) => {
      this.end ??= { code: s.code, details: s.details };
      this.wake();
    });
  }

  cancel(): void {
    this.stream.cancel();
  }

  /** Resolves true once `cond` holds, false if it does not within `ms`. */
  until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(ok);
      };
      const waiter = () => cond() && done(true);
      const timer = setTimeout(() => done(cond()), ms);
      this.waiters.add(waiter);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Runs the fixture's change command; fails with its exit and stderr, bounded in time. */
function run(command: string[], timeoutMs: number): Promise<void> {
  const [cmd, ...args] = command;
  if (!cmd) return Promise.reject(new Error("the fixture's change command is empty"));
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 }, (err, _out, stderr) =>
      err
        ? reject(
            new Error(`the change command failed: ${errorMessage(err)}${stderr ? ` ${stderr.slice(0, 400)}` : ''}`, {
              cause: err,
            }),
          )
        : resolve(),
    ),
  );
}
