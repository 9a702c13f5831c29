// Mount: validate everything → pick the identity → read each object (in parallel, under the
// vault's budget) → convert to files. One failing object fails the Mount unless the class asks for
// a partial sync, in which case the rest are returned and the failures listed.
import {
  errorMessage,
  ProviderError,
  type CallContext,
  type ChangeSource,
  type MountResult,
  type ObjectFailure,
  type ObjectVersionEntry,
  type ParsedMountRequest,
  type Provider,
  type ProviderFile,
} from '@secret-store-sync/proto';
import { changeKey, MAX_CHANGE_KEYS_BYTES, vaultHost } from './change-keys.js';
import { resolveCloud, vaultUrl } from './cloud.js';
import type { Config } from './config.js';
import { disabledVersion, isDisabled } from './errors.js';
import { ContentError, certificateFile, certificateSecret, decodeSecret, publicKeyPem } from './content.js';
import type { Credentials } from './credentials.js';
import type { Logger } from './log.js';
import { AZURE, MOUNT, providerError } from './messages.js';
import type { KeyVaultObject } from './objects.js';
import { parseMountParams, type MountParams } from './params.js';
import type { KeyVaultAccess, VaultSession } from './vault.js';

export const RUNTIME_NAME = 'secret-store-sync-provider-azure';

interface ObjectResult {
  files: ProviderFile[];
  versions: ObjectVersionEntry[];
  /** Versions actually read, for the log line. */
  read: string[];
  /** When each returned object version expires, by its id (only those that do). */
  expiresOn: Record<string, Date>;
}

/** The earlier of two optional times. */
function earliest(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() <= b.getTime() ? a : b;
}

/** What the provider reads with: parsed configuration, Key Vault access and identities. */
export interface AzureProviderDeps {
  runtimeVersion: string;
  cfg: Config;
  log: Logger;
  access: KeyVaultAccess;
  credentials: Credentials;
  /** Told each returned object's expiry (the provider's metric). */
  observeExpiry?: (t: Date) => void;
  /** Change notices (change-source.ts); served beside the provider API. */
  changes?: ChangeSource;
}

export class AzureProvider implements Provider {
  readonly runtimeName = RUNTIME_NAME;

  readonly runtimeVersion: string;
  readonly changes: ChangeSource | undefined;
  private readonly cfg: Config;
  private readonly log: Logger;
  private readonly access: KeyVaultAccess;
  private readonly credentials: Credentials;
  private readonly observeExpiry: ((t: Date) => void) | undefined;

  constructor(deps: AzureProviderDeps) {
    this.runtimeVersion = deps.runtimeVersion;
    this.changes = deps.changes;
    this.cfg = deps.cfg;
    this.log = deps.log;
    this.access = deps.access;
    this.credentials = deps.credentials;
    this.observeExpiry = deps.observeExpiry;
  }

  async mount(request: ParsedMountRequest, ctx: CallContext): Promise<MountResult> {
    const started = Date.now();
    let params: MountParams | undefined;
    try {
      params = parseMountParams(request, this.cfg);
      const p = params;
      const cloud = await resolveCloud(p.cloud, this.cfg.cloudEnvDir);
      const { credential, key } = this.credentials.get(p.identity, p.tenantId, cloud);
      const url = vaultUrl(p.vaultName, cloud);
      const session = this.access.session({
        vaultUrl: url,
        vaultName: p.vaultName,
        credential,
        identityKey: key,
        firstSync: request.currentObjectVersions.length === 0,
        fresh: ctx.fresh,
      });
      // Reads are paced per Mount: a Mount of many objects queues behind itself, not in front of
      // every other Mount's reads, and a cancelled Mount stops starting reads.
      const pacer = new Pacer(this.cfg.mountReadConcurrency, ctx.signal);
      const settled = await Promise.allSettled(p.objects.map((o) => this.readObject(session, o, p, pacer)));

      const files: ProviderFile[] = [];
      const objectVersions: ObjectVersionEntry[] = [];
      const failures: ObjectFailure[] = [];
      const expiresOn: Record<string, Date> = {};
      const keys = this.cfg.changeQueue ? new ChangeKeys(vaultHost(url)) : undefined;
      settled.forEach((s, i) => {
        const o = p.objects[i]!;
        if (s.status === 'fulfilled') {
          files.push(...s.value.files);
          objectVersions.push(...s.value.versions);
          Object.assign(expiresOn, s.value.expiresOn);
          keys?.add(o, s.value.versions);
        } else {
          const e =
            s.reason instanceof ProviderError ? s.reason : providerError(MOUNT.internal({ detail: String(s.reason) }));
          failures.push({
            id: `${o.type}/${o.name}`,
            code: e.code,
            ...(e.reason ? { reason: e.reason } : {}),
            message: e.message,
          });
        }
      });
      if (failures.length > 0 && (!p.partial || failures.length === p.objects.length)) {
        const first = asProviderError(settled.find((s) => s.status === 'rejected')!.reason);
        throw providerError(MOUNT.andMore({ first, failed: failures.length, of: p.objects.length }), {
          context: first.context,
        });
      }
      const total = files.reduce(
        (n, f) => n + (typeof f.contents === 'string' ? Buffer.byteLength(f.contents) : f.contents.length),
        0,
      );
      if (total > this.cfg.maxMountBytes) {
        throw providerError(
          MOUNT.tooLarge({ vault: p.vaultName, files: files.length, bytes: total, limit: this.cfg.maxMountBytes }),
          { context: { vault: p.vaultName } },
        );
      }
      this.log.info('mount', {
        requestId: ctx.requestId,
        pod: `${p.pod.namespace}/${p.pod.name}`,
        vault: p.vaultName,
        identity: p.identity.mode,
        objects: p.objects.map((o) => ({ type: o.type, name: o.name, ...(o.version ? { version: o.version } : {}) })),
        versions: objectVersions,
        files: files.length,
        ...(failures.length
          ? { partialFailures: failures.map((f) => ({ id: f.id, code: f.code, reason: f.reason })) }
          : {}),
        durationMs: Date.now() - started,
      });
      for (const t of Object.values(expiresOn)) this.observeExpiry?.(t);
      return {
        files,
        objectVersions,
        ...(failures.length ? { failures } : {}),
        ...(Object.keys(expiresOn).length ? { expiresOn } : {}),
        ...(keys?.size ? { changeKeys: keys.byId } : {}),
      };
    } catch (err) {
      const e = asProviderError(err);
      this.log.warn('mount failed', {
        requestId: ctx.requestId,
        ...(params
          ? {
              pod: `${params.pod.namespace}/${params.pod.name}`,
              vault: params.vaultName,
              objects: params.objects.map((o) => `${o.type}/${o.name}`),
            }
          : {}),
        code: e.code,
        reason: e.reason,
        ...(Object.keys(e.context).length ? { where: e.context } : {}),
        error: e.message,
        durationMs: Date.now() - started,
      });
      throw e;
    }
  }

  private async readObject(
    session: VaultSession,
    o: KeyVaultObject,
    p: MountParams,
    pacer: Pacer,
  ): Promise<ObjectResult> {
    try {
      return await this.readVersions(session, o, p, pacer);
    } catch (e) {
      // Conversion errors are raised without context; name the vault and object here.
      if (e instanceof ContentError)
        throw providerError(AZURE.alsoAt({ where: `vault '${p.vaultName}': ${o.type} '${o.name}'`, error: e }), {
          context: { vault: p.vaultName, object: `${o.type} '${o.name}'` },
        });
      throw e;
    }
  }

  private async readVersions(
    session: VaultSession,
    o: KeyVaultObject,
    p: MountParams,
    pacer: Pacer,
  ): Promise<ObjectResult> {
    if (o.versionHistory <= 1)
      return this.readVersion({ session, p, pacer }, o, {
        version: o.version,
        path: o.fileName,
        id: `${o.type}/${o.name}`,
      });
    // `/0` is the version the vault calls current — what a read without a version returns — then
    // the rest newest first. Key Vault lists versions by id, not by age, and stamps `created` to the
    // second (lowkey-vault#428; azure-powershell PR #14823), so neither list position nor time
    // alone orders them: ties fall back to the version id, the same for every Mount.
    const listed = await pacer.run((signal) => session.versions(o.type, o.name, signal));
    const current = await this.currentOf(listed, session, o, pacer);
    const all = listed
      .filter((v) => v.enabled)
      .sort(
        (a, b) =>
          Number(b.version === current) - Number(a.version === current) ||
          b.created - a.created ||
          (a.version < b.version ? 1 : a.version > b.version ? -1 : 0),
      );
    let start = 0;
    if (o.version) {
      start = all.findIndex((v) => v.version === o.version);
      if (start < 0)
        throw providerError(
          MOUNT.noSuchVersion({ vault: p.vaultName, object: `${o.type} '${o.name}'`, version: o.version }),
          { context: { vault: p.vaultName, object: `${o.type} '${o.name}'`, version: o.version } },
        );
    }
    const chosen = all.slice(start, start + o.versionHistory);
    if (chosen.length === 0)
      throw providerError(MOUNT.noEnabledVersions({ vault: p.vaultName, object: `${o.type} '${o.name}'` }), {
        context: { vault: p.vaultName, object: `${o.type} '${o.name}'` },
      });
    const parts = await Promise.all(
      chosen.map((v, k) =>
        this.readVersion({ session, p, pacer }, o, {
          version: v.version,
          path: `${o.fileName}/${k}`,
          id: `${o.type}/${o.name}/${k}`,
        }),
      ),
    );
    return {
      files: parts.flatMap((x) => x.files),
      versions: parts.flatMap((x) => x.versions),
      read: parts.flatMap((x) => x.read),
      expiresOn: Object.assign({}, ...parts.map((x) => x.expiresOn)) as Record<string, Date>,
    };
  }

  /**
   * The current version is the newest. Only when several share the newest second does it take a
   * read without a version to tell which (a request per Mount spared in the common case).
   */
  private async currentOf(
    listed: { version: string; enabled: boolean; created: number }[],
    session: VaultSession,
    o: KeyVaultObject,
    pacer: Pacer,
  ): Promise<string | undefined> {
    const newest = Math.max(...listed.map((v) => v.created));
    const top = listed.filter((v) => v.created === newest);
    if (top.length === 1) return top[0]!.enabled ? top[0]!.version : undefined;
    return this.currentVersion(session, o, pacer);
  }

  /** The id of the version a read without a version returns (undefined when that version is disabled). */
  private async currentVersion(session: VaultSession, o: KeyVaultObject, pacer: Pacer): Promise<string | undefined> {
    try {
      // The value is kept by version id, so reading it again below costs no request.
      const read = await pacer.run<{ version: string; enabled?: boolean }>((signal) =>
        session.read(o.type, o.name, '', signal),
      );
      return read.enabled === false ? undefined : read.version;
    } catch (e) {
      if (isDisabled(e)) return undefined;
      throw e;
    }
  }

  /** One version of an object, as the file `path` with the object-version id `id`. */
  private async readVersion(
    { session, p, pacer }: { session: VaultSession; p: MountParams; pacer: Pacer },
    o: KeyVaultObject,
    { version, path, id }: { version: string; path: string; id: string },
  ): Promise<ObjectResult> {
    const mode = o.mode ?? p.defaultMode;
    const one = (
      contents: Buffer | string,
      got: string,
      expires: Date | undefined,
      extra: ProviderFile[] = [],
    ): ObjectResult => ({
      files: [...extra, { path, contents, mode }],
      versions: [{ id, version: got }],
      read: [got],
      expiresOn: expires ? { [id]: expires } : {},
    });
    switch (o.type) {
      case 'secret': {
        const s = await pacer.run((signal) => session.read('secret', o.name, version, signal));
        if (!s.keyId) return one(decodeSecret(s.value, o.encoding), s.version, s.expiresOn);
        const parts = await certificateSecret(s.value, s.contentType, o.format, {
          constructChain: this.cfg.constructPemChain,
          separate: this.cfg.writeCertAndKeyInSeparateFiles,
        });
        if (parts.warning) this.log.warn(parts.warning, { vault: p.vaultName, object: o.name, version: s.version });
        const extra =
          parts.crt && parts.key
            ? [
                { path: `${path}.crt`, contents: parts.crt, mode },
                { path: `${path}.key`, contents: parts.key, mode },
              ]
            : [];
        const main = o.encoding === 'utf-8' ? parts.main : decodeSecret(parts.main.toString('utf8'), o.encoding);
        return one(main, s.version, earliest(s.expiresOn, parts.notAfter), extra);
      }
      case 'key': {
        const k = await pacer.run((signal) => session.read('key', o.name, version, signal));
        if (!k.enabled) throw disabledVersion(p.vaultName, 'key', o.name, k.version);
        return one(publicKeyPem(k.jwk), k.version, k.expiresOn);
      }
      case 'cert': {
        const c = await pacer.run((signal) => session.read('cert', o.name, version, signal));
        if (!c.enabled) throw disabledVersion(p.vaultName, 'certificate', o.name, c.version);
        const { pem, notAfter } = certificateFile(c.cer);
        return one(pem, c.version, earliest(c.expiresOn, notAfter));
      }
    }
  }
}

/**
 * The change keys of a Mount's objects (change-keys.ts), by object version id. An object pinned
 * to a version gets none: a new version never changes what it returns. Bounded in bytes: objects
 * past the bound are polled only.
 */
class ChangeKeys {
  readonly byId: Record<string, string> = {};
  size = 0;
  private bytes = 2;

  constructor(private readonly host: string) {}

  add(o: KeyVaultObject, versions: ObjectVersionEntry[]): void {
    if (o.version) return;
    const key = changeKey(this.host, o.name);
    for (const { id } of versions) {
      // "id":"key", as JSON: quotes, colon and comma.
      const cost = Buffer.byteLength(JSON.stringify(id)) + key.length + 4;
      if (this.bytes + cost > MAX_CHANGE_KEYS_BYTES) return;
      this.bytes += cost;
      this.byId[id] = key;
      this.size++;
    }
  }
}

/** A failure as the Mount reports it: a ProviderError as raised, anything else as Internal with its message. */
function asProviderError(err: unknown): ProviderError {
  return err instanceof ProviderError ? err : providerError(MOUNT.internal({ detail: errorMessage(err) }));
}

/**
 * At most `limit` of one Mount's reads at a time. One abort listener for the whole Mount (not one
 * per queued read): when the Mount is cancelled, everything still queued fails at once.
 */
class Pacer {
  private active = 0;
  private readonly queue: { start: () => void; fail: (e: unknown) => void }[] = [];

  constructor(
    private readonly limit: number,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener(
      'abort',
      () => {
        for (const w of this.queue.splice(0)) w.fail(signal.reason);
      },
      { once: true },
    );
  }

  async run<T>(read: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.signal.aborted) throw this.signal.reason;
    if (this.active >= this.limit) await new Promise<void>((start, fail) => this.queue.push({ start, fail }));
    else this.active++;
    try {
      return await read(this.signal);
    } finally {
      const next = this.queue.shift();
      if (next) next.start();
      else this.active--;
    }
  }
}
