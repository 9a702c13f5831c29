// The provider conformance suite: checks that a provider speaks the v1alpha1 contract the way the
// manager relies on. Runs against a socket, or a command it starts (then SIGTERM is checked too).
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderClient } from './client.js';
import { socketPath } from './endpoint.js';
import { errorMessage, statusName } from './errors.js';
import type { CSIDriverProviderClient } from './generated/v1alpha1/CSIDriverProvider.js';
import type { MountRequest } from './generated/v1alpha1/MountRequest.js';
import { api } from './load.js';
import { runChangeChecks, type ChangeCase, type CheckKind } from './conformance-changes.js';
import { buildMountRequest, rfc3339 } from './request.js';
import { OBJECT_EXPIRY_METADATA_KEY } from './wire.js';

export interface MountCase {
  /** The SecretProviderClass parameters; the caller's csi.storage.k8s.io/* keys are added as the manager adds them. */
  attributes: Record<string, string>;
  /** The Mount's namespace and ServiceAccount (default "default" and "default"). */
  namespace?: string;
  serviceAccountName?: string;
  /** Service-account tokens by audience (JWTs), sent as csi.storage.k8s.io/serviceAccount.tokens. */
  tokens?: Record<string, string>;
  secrets?: Record<string, string>;
  /** Default file mode, e.g. 0o644. */
  permission?: number;
}

export interface Fixture {
  /** A Mount the provider must answer with files. */
  valid: MountCase;
  /**
   * A Mount carrying a parameter the provider does not know. Refusing it is advice, not a rule of the
   * protocol (upstream providers ignore unknown keys). Default: `valid` plus an unknown key.
   */
  unknownParameter?: MountCase;
  /** More Mounts that must be refused (bad values). */
  invalid?: (MountCase & { name: string })[];
  /** A Mount whose answer exceeds the message-size limit; it must fail with a clear error. */
  large?: MountCase;
  /**
   * For a provider that serves change notices (changes.proto): how to change an object the `valid`
   * Mount returns, so that the suite checks a notice names the key that Mount gave.
   */
  change?: ChangeCase;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  skipped?: boolean;
  /**
   * Good practice that the protocol does not require (a provider the manager works with may not
   * follow it): reported apart, and never a failure of the run.
   */
  advice?: boolean;
}

export interface ConformanceOptions {
  fixture: Fixture;
  /**
   * An endpoint to test, or a command to start: `{endpoint}` in its arguments becomes
   * `unix:///…/provider.sock`, `{socket}` the socket's bare path.
   */
  endpoint?: string;
  command?: string[];
  timeoutMs?: number;
  /** The caller's receive limit (the manager's default is 4 MiB). */
  maxMessageBytes?: number;
}

/** The request the manager would send for this case: the same builder, the same fields. */
const toRequest = (c: MountCase): MountRequest =>
  buildMountRequest({
    parameters: c.attributes,
    pod: { name: 'provider-kit-conformance', uid: CONFORMANCE_POD_UID, namespace: c.namespace ?? 'default' },
    serviceAccountName: c.serviceAccountName ?? 'default',
    tokens: Object.fromEntries(
      Object.entries(c.tokens ?? {}).map(([aud, token]) => [
        aud,
        { token, expirationTimestamp: rfc3339(new Date(Date.now() + 600_000)) },
      ]),
    ),
    ...(c.secrets ? { secrets: c.secrets } : {}),
    ...(c.permission !== undefined ? { permission: c.permission } : {}),
  });
const CONFORMANCE_POD_UID = '00000000-0000-4000-8000-000000000000';

export async function runConformance(opts: ConformanceOptions): Promise<CheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const results: CheckResult[] = [];
  let child: ChildProcess | undefined;
  const check = async (name: string, f: () => Promise<string>, kind: CheckKind = {}) => {
    const advice = kind.advice ? { advice: true } : {};
    if (child && hasExited(child)) {
      results.push({ name, ok: false, ...advice, detail: `the provider ${exitText(child)} before this check` });
      return;
    }
    try {
      results.push({ name, ok: true, ...advice, detail: await f() });
    } catch (e) {
      results.push({ name, ok: false, ...advice, detail: errorMessage(e) });
    }
  };
  let endpoint = opts.endpoint ?? '';
  if (opts.command) {
    endpoint = `unix://${join(mkdtempSync(join(tmpdir(), 'conformance-')), 'provider.sock')}`;
    // {socket}: the bare path, for providers whose flag takes one (vault-csi-provider's -endpoint).
    const [cmd, ...args] = opts.command.map((a) =>
      a.replaceAll('{endpoint}', endpoint).replaceAll('{socket}', socketPath(endpoint)),
    );
    // A group of its own: wrappers (npx, sh) must not leave the provider running after the suite.
    child = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  }
  const client = new ProviderClient(endpoint, { maxMessageBytes: opts.maxMessageBytes ?? 4 * 1024 * 1024 });
  const mount = (c: MountCase) => client.mount(toRequest(c), timeoutMs);
  const refused = async (c: MountCase) => {
    const code = await mount(c).then(
      () => status.OK,
      (e: { code: number }) => e.code,
    );
    if (code === status.OK) throw new Error('the provider accepted it');
    if (code === status.DEADLINE_EXCEEDED) throw new Error(`no answer within ${timeoutMs} ms`);
    return statusName(code);
  };
  try {
    await check('starts and answers Version with v1alpha1', async () => {
      const deadline = Date.now() + 20_000;
      const v = await (async () => {
        for (;;) {
          try {
            return await client.version(2_000);
          } catch (e) {
            if (child && hasExited(child)) throw new Error(`the provider ${exitText(child)}`, { cause: e });
            if (Date.now() > deadline) throw e;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      })();
      // Checked outside the retries: a wrong answer is final, only no answer is waited out.
      if (v.version !== 'v1alpha1') throw new Error(`Version answered '${v.version}'`);
      if (!v.runtimeName) throw new Error('Version has no runtime_name');
      return `${v.runtimeName} ${v.runtimeVersion}`;
    });
    let firstVersions = '';
    await check('a valid Mount returns files and object versions', async () => {
      const res = await mount(opts.fixture.valid);
      if (res.files.length === 0) throw new Error('no files');
      if (res.objectVersion.length === 0) throw new Error('no object versions (the manager refuses such a response)');
      const bad = res.objectVersion.find((o) => !o.id || !o.version);
      if (bad) throw new Error(`object version with an empty id or version: ${JSON.stringify(bad)}`);
      firstVersions = JSON.stringify(res.objectVersion);
      return `${res.files.length} files, ${res.objectVersion.length} object versions`;
    });
    await check('the optional expiry trailer, when sent, maps object version ids to RFC 3339 times', async () => {
      const res = await mount(opts.fixture.valid);
      if (!res.expiry) return 'not sent (optional)';
      if (res.expiry.dropped > 0)
        throw new Error(
          `${res.expiry.dropped} entries of the ${OBJECT_EXPIRY_METADATA_KEY} trailer are not an object id with an RFC 3339 time`,
        );
      const ids = new Set(res.objectVersion.map((o) => o.id));
      const stray = Object.keys(res.expiry.expiresOn).find((id) => !ids.has(id));
      if (stray) throw new Error(`the expiry trailer names '${stray}', which is not among the object versions`);
      return `${Object.keys(res.expiry.expiresOn).length} of ${ids.size} objects expire`;
    });
    await check('file paths are relative, without "..", unique', async () => {
      const res = await mount(opts.fixture.valid);
      const seen = new Set<string>();
      for (const f of res.files) {
        if (!f.path || f.path.startsWith('/') || f.path.includes('\\') || f.path.split('/').includes('..'))
          throw new Error(`unsafe path '${f.path}'`);
        if (seen.has(f.path)) throw new Error(`path '${f.path}' returned twice`);
        seen.add(f.path);
        if (f.mode < 0 || f.mode > 0o7777) throw new Error(`path '${f.path}' has mode ${f.mode}`);
      }
      if (JSON.stringify(res.objectVersion) !== firstVersions)
        throw new Error('a second Mount of unchanged objects returned other object versions');
      return `${seen.size} paths; object versions stable across Mounts`;
    });
    await check('malformed attributes are refused with an error, not a crash or a hang', async () => {
      const code = await client.mount({ ...toRequest(opts.fixture.valid), attributes: '{"not json' }, timeoutMs).then(
        () => status.OK,
        (e: { code: number }) => e.code,
      );
      if (code === status.OK) throw new Error('the provider accepted malformed JSON');
      if (code === status.DEADLINE_EXCEEDED || code === status.UNAVAILABLE)
        throw new Error(`the provider did not answer (${statusName(code)})`);
      await client.version(2_000);
      return `refused with ${statusName(code)}; still serving`;
    });
    await check(
      'an unknown parameter is refused',
      async () =>
        refused(
          opts.fixture.unknownParameter ?? {
            ...opts.fixture.valid,
            attributes: { ...opts.fixture.valid.attributes, 'conformance-unknown-parameter': 'x' },
          },
        ).catch((e: unknown) => {
          throw new Error(
            `${errorMessage(e)}: a misspelt parameter then goes unnoticed; refusing keys you do not know names the typo`,
            { cause: e },
          );
        }),
      { advice: true },
    );
    for (const c of opts.fixture.invalid ?? [])
      await check(`invalid input is refused: ${c.name}`, async () => refused(c));
    await check('10 concurrent Mounts all succeed alike', async () => {
      const all = await Promise.all(Array.from({ length: 10 }, () => mount(opts.fixture.valid)));
      const shapes = new Set(
        all.map((r) => JSON.stringify(r.files.map((f) => [f.path, f.contents.toString('base64')]))),
      );
      if (shapes.size !== 1) throw new Error('concurrent Mounts returned different files');
      return `10 × ${all[0]!.files.length} files`;
    });
    if (opts.fixture.large) {
      await check('a response over the size limit is reported', async () => {
        const err = await mount(opts.fixture.large!).then(
          () => undefined,
          (e: { code: number; details: string }) => e,
        );
        if (!err) throw new Error(`a response over ${opts.maxMessageBytes ?? 4 * 1024 * 1024} bytes was accepted`);
        return `${statusName(err.code)}: ${err.details}`;
      });
    } else {
      results.push({
        name: 'a response over the size limit is reported',
        ok: true,
        skipped: true,
        detail: 'skipped: the fixture has no `large` case',
      });
    }
    await check('survives a client that disconnects mid-call', async () => {
      const raw = new api.v1alpha1.CSIDriverProvider(
        `unix:${socketPath(endpoint)}`,
        credentials.createInsecure(),
      ) as unknown as CSIDriverProviderClient;
      await new Promise<void>((resolve) => {
        const call = raw.Mount(toRequest(opts.fixture.valid), new Metadata(), () => resolve());
        setTimeout(() => call.cancel(), 5);
      });
      raw.close();
      const v = await client.version(2_000);
      return `still answers (${v.runtimeName})`;
    });
    await runChangeChecks({
      endpoint,
      client,
      mountValid: () => mount(opts.fixture.valid),
      ...(opts.fixture.change ? { change: opts.fixture.change } : {}),
      check,
      record: (r) => results.push(r),
      timeoutMs,
    });
    if (child) {
      await check('SIGTERM: exits 0 and removes its socket', async () => {
        client.close();
        const exited = new Promise<void>((r) => (hasExited(child!) ? r() : child!.once('exit', () => r())));
        process.kill(-child!.pid!, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          exited,
          new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 15_000))),
        ]).finally(() => clearTimeout(timer));
        if (outcome === 'timeout') throw new Error('still running 15 s after SIGTERM');
        if (child!.exitCode !== 0) throw new Error(`it ${exitText(child!)}`);
        if (existsSync(socketPath(endpoint))) throw new Error('left its socket file behind');
        return 'exit 0, socket removed';
      });
    } else {
      results.push({
        name: 'SIGTERM: exits 0 and removes its socket',
        ok: true,
        skipped: true,
        detail: 'skipped: run with --command to check shutdown',
      });
    }
  } finally {
    client.close();
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  return results;
}

/** Whether a started provider is gone, by an exit or a signal. */
const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
/** "exited with code 3" or "was killed by SIGKILL", as a user reads it. */
export const exitText = (child: Pick<ChildProcess, 'exitCode' | 'signalCode'>): string =>
  child.signalCode ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`;

/**
 * Prints one line per check, the advice apart from the rules, then the counts; true when no rule
 * failed (advice not followed never fails the run).
 */
export function report(results: CheckResult[], write: (line: string) => void = (l) => console.log(l)): boolean {
  const line = (r: CheckResult) => `${r.skipped ? 'skip' : r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`;
  for (const r of results.filter((r) => !r.advice)) write(line(r));
  const advice = results.filter((r) => r.advice);
  const unfollowed = advice.filter((r) => !r.ok);
  if (advice.length) {
    write('');
    write('Advice (good practice, not a rule of the protocol; never fails the run):');
    for (const r of advice) write(`${r.ok ? 'ok  ' : 'note'} ${r.name}: ${r.detail}`);
    write('');
  }
  const rules = results.filter((r) => !r.advice);
  const failed = rules.filter((r) => !r.ok).length;
  const passed = results.filter((r) => r.ok && !r.skipped).length;
  const skipped = results.filter((r) => r.skipped).length;
  write(
    `${passed} passed, ${failed} failed, ${skipped} skipped${unfollowed.length ? `, ${unfollowed.length} advice not followed` : ''}`,
  );
  return failed === 0;
}
