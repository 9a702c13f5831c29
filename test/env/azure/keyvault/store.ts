// In-memory Key Vault state: vaults holding versioned secrets, keys and certificates, with soft
// delete. Behaviour follows the real service where it differs from other emulators: a disabled
// version answers 403, error codes are Key Vault's own, and a certificate's backing secret holds
// the whole chain that was imported.
import { randomBytes, type JsonWebKey } from 'node:crypto';

export type Kind = 'secrets' | 'keys' | 'certificates';

export interface Attributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

export interface Version<T> {
  version: string;
  attributes: Attributes;
  tags?: Record<string, string>;
  data: T;
}

export interface Entry<T> {
  name: string;
  versions: Version<T>[]; // oldest first
  deleted?: { deletedDate: number; scheduledPurgeDate: number };
}

export class Collection<T> {
  private readonly live = new Map<string, Entry<T>>();
  private readonly deleted = new Map<string, Entry<T>>();

  constructor(readonly kind: Kind) {}

  add(
    name: string,
    data: T,
    opts: { enabled?: boolean; nbf?: number; exp?: number; tags?: Record<string, string>; version?: string } = {},
  ): Version<T> {
    if (this.deleted.has(name)) {
      throw new KvError(
        409,
        'Conflict',
        `${singular(this.kind)} ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the ${singular(this.kind)} can only be recovered or purged.`,
      );
    }
    const now = nowS();
    const v: Version<T> = {
      version: opts.version ?? newVersionId(),
      attributes: {
        enabled: opts.enabled ?? true,
        created: now,
        updated: now,
        ...(opts.nbf ? { nbf: opts.nbf } : {}),
        ...(opts.exp ? { exp: opts.exp } : {}),
      },
      ...(opts.tags ? { tags: opts.tags } : {}),
      data,
    };
    const entry = this.live.get(name) ?? { name, versions: [] };
    entry.versions.push(v);
    this.live.set(name, entry);
    return v;
  }

  /**
   * Versions as list-versions returns them: ordered by version id, not by time — real Key Vault
   * does (lowkey-vault#428 shows a real response; azure-powershell PR #14823 sorts by `created`
   * itself for this reason) — so clients must not read age from list position.
   */
  listed(name: string): Version<T>[] {
    return [...this.entry(name).versions].sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  }

  entry(name: string): Entry<T> {
    const e = this.live.get(name);
    if (!e) throw notFound(this.kind, name);
    return e;
  }

  /** The latest version, or the named one. */
  get(name: string, version?: string): Version<T> {
    const e = this.entry(name);
    const v = version ? e.versions.find((x) => x.version === version) : e.versions.at(-1);
    if (!v) throw notFound(this.kind, name, version);
    return v;
  }

  names(): Entry<T>[] {
    return [...this.live.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  delete(name: string): Entry<T> {
    const e = this.entry(name);
    this.live.delete(name);
    const now = nowS();
    e.deleted = { deletedDate: now, scheduledPurgeDate: now + 90 * 86_400 };
    this.deleted.set(name, e);
    return e;
  }

  getDeleted(name: string): Entry<T> {
    const e = this.deleted.get(name);
    if (!e)
      throw new KvError(
        404,
        `${capital(singular(this.kind))}NotFound`,
        `Deleted ${singular(this.kind)} not found: ${name}`,
      );
    return e;
  }

  listDeleted(): Entry<T>[] {
    return [...this.deleted.values()];
  }

  purge(name: string): void {
    this.getDeleted(name);
    this.deleted.delete(name);
  }

  recover(name: string): Entry<T> {
    const e = this.getDeleted(name);
    this.deleted.delete(name);
    delete e.deleted;
    this.live.set(name, e);
    return e;
  }
}

export interface SecretData {
  value: string;
  contentType?: string;
  /** Set on the backing secret of a certificate. */
  managedBy?: { certificate: string; keyVersion: string };
}

export interface KeyData {
  /** Private key in JWK form (never returned to clients). */
  privateJwk: JsonWebKey;
  kty: string;
  keyOps: string[];
  managed?: boolean;
}

export interface CertificateData {
  /** DER of the leaf certificate, base64. */
  cer: string;
  x5t: string;
  subject: string;
  sans: string[];
  notBefore: number;
  notAfter: number;
  contentType: string;
  keyVersion: string;
  secretVersion: string;
  kty: string;
  keySize?: number;
  crv?: string;
}

/** Switches for the rarer shapes a real vault shows (set through the stand-in's admin API). */
export interface VaultSettings {
  /**
   * Network rules as seen from this client: `open`; `privateLinkOnly` (`az keyvault update
   * --public-network-access Disabled`: 403 ForbiddenByConnection); `firewall` (`--default-action
   * Deny` without this address: 403 ForbiddenByFirewall).
   */
  network: 'open' | 'privateLinkOnly' | 'firewall';
  /** Whether this vault's own throttling 429s carry Retry-After (real ones often do not). */
  throttleRetryAfter: boolean;
  /** GET/LIST requests per 10 s before 429 (Key Vault's service limit is 4 000 per vault). */
  throttleLimit: number;
}

export class Vault {
  readonly secrets = new Collection<SecretData>('secrets');
  readonly keys = new Collection<KeyData>('keys');
  readonly certificates = new Collection<CertificateData>('certificates');
  readonly settings: VaultSettings = { network: 'open', throttleRetryAfter: false, throttleLimit: 4_000 };
  constructor(
    readonly name: string,
    readonly tenantId: string,
    /** The cloud's Key Vault DNS suffix: a vault exists in one cloud only. */
    readonly dnsSuffix: string,
  ) {}

  get host(): string {
    return `${this.name}.${this.dnsSuffix}`;
  }
}

/** A Key Vault version id: 32 lowercase hex digits. */
export function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

export class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

export function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

function singular(kind: Kind): string {
  return kind.slice(0, -1);
}
function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function notFound(kind: Kind, name: string, version?: string): KvError {
  const what = singular(kind);
  const id = version ? `${name}/${version}` : name;
  return new KvError(
    404,
    `${capital(what)}NotFound`,
    `A ${what} with (name/id) ${id} was not found in this key vault. If you recently deleted this ${what} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}
