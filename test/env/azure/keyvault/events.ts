// What Key Vault publishes to its Event Grid system topic, as Microsoft documents it for Key Vault as
// an Event Grid source (learn.microsoft.com/azure/event-grid/event-schema-key-vault) and as real
// deliveries show it:
// - `Microsoft.KeyVault.{Secret,Key,Certificate}NewVersionCreated` for every new version (set, create,
//   import);
// - `…NearExpiry` when the current version is 30 days from its `exp` (for keys the rotation policy
//   may move that; the default is 30 days), and `…Expired` once it has expired;
// - `Microsoft.KeyVault.VaultAccessPolicyChanged` for access-policy changes, which the emulator does
//   not model (its vaults use RBAC only).
// Nothing is published for a disable/enable, a tag or other attribute update, a delete or a
// recover: "Notification events are triggered only on new versions of secrets, keys and
// certificates" (learn.microsoft.com/azure/key-vault/general/event-grid-overview); tag changes
// have no event (Azure/azure-sdk-for-net#15225, a feature request the Key Vault team recorded).
// A certificate import publishes CertificateNewVersionCreated only: whether Key Vault also
// publishes Key/SecretNewVersionCreated for the certificate's backing key and secret is not
// documented, so a reader must map a certificate event to the secret of the same name itself.
//
// The data object: PascalCase `Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP`, with NBF
// and EXP as numbers (epoch seconds; the schema table says number) or null when the version has
// none — as in real deliveries captured in 2022 and 2024 (blog posts quoting whole events:
// "NBF": null, "EXP": null). The documented sample spells them as quoted strings, and one real
// payload of 2021 came camelCase with strings (MicrosoftDocs/azure-docs#78126); the subscription
// knob `legacyShape` delivers that shape (camelCaseStrings) so readers can be tested against it.
import { ARM_RESOURCE_GROUP } from '../directory.js';
import { eventId, eventTime, type EventGrid, type EventGridEvent } from '../eventgrid.js';
import type { CertificateData, Kind, Vault, Version } from './store.js';

export type KeyVaultEventKind = 'NewVersionCreated' | 'NearExpiry' | 'Expired';

/** 30 days before `exp` (the event-schema page: "The event is triggered 30 days before the expiration date"). */
const NEAR_EXPIRY_S = 30 * 86_400;
const OBJECT_TYPE: Record<Kind, string> = { secrets: 'Secret', keys: 'Key', certificates: 'Certificate' };

export function vaultResourceId(vault: string): string {
  return `${ARM_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/${vault}`;
}

/** The validity window an event reports: a certificate's comes from the certificate itself. */
function window(kind: Kind, v: Version<unknown>): { nbf?: number; exp?: number } {
  if (kind === 'certificates') {
    const d = v.data as CertificateData;
    return { nbf: d.notBefore, exp: d.notAfter };
  }
  return {
    ...(v.attributes.nbf !== undefined ? { nbf: v.attributes.nbf } : {}),
    ...(v.attributes.exp !== undefined ? { exp: v.attributes.exp } : {}),
  };
}

export function keyVaultEvent(o: {
  vault: Vault;
  kind: Kind;
  name: string;
  version: Version<unknown>;
  event: KeyVaultEventKind;
}): EventGridEvent {
  const { nbf, exp } = window(o.kind, o.version);
  const objectType = OBJECT_TYPE[o.kind];
  return {
    id: eventId(),
    topic: vaultResourceId(o.vault.name),
    subject: o.name,
    eventType: `Microsoft.KeyVault.${objectType}${o.event}`,
    eventTime: eventTime(),
    data: {
      Id: `https://${o.vault.host}/${o.kind}/${o.name}/${o.version.version}`,
      VaultName: o.vault.name,
      ObjectType: objectType,
      ObjectName: o.name,
      Version: o.version.version,
      NBF: nbf ?? null,
      EXP: exp ?? null,
    },
    dataVersion: '1',
    metadataVersion: '1',
  };
}

/** The same event as the camelCase payload with string times of MicrosoftDocs/azure-docs#78126. */
export function camelCaseStrings(event: EventGridEvent): EventGridEvent {
  const d = event.data;
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    ...event,
    data: {
      Id: d.Id,
      vaultName: d.VaultName,
      objectType: d.ObjectType,
      objectName: d.ObjectName,
      version: d.Version,
      nbf: str(d.NBF),
      exp: str(d.EXP),
    },
  };
}

/**
 * Publishes a vault's events to Event Grid: new versions as they are written, near-expiry and
 * expiry of each object's current version as time passes (checked every `scanMs`).
 */
export class KeyVaultEvents {
  /** `vault kind name version exp event` of expiry events already published (each fires once). */
  private readonly fired = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly opts: {
      eventGrid: EventGrid;
      vaults: () => Iterable<Vault>;
      scanMs?: number;
    },
  ) {
    this.timer = setInterval(() => this.scan(), opts.scanMs ?? 1_000);
    this.timer.unref();
  }

  newVersion(vault: Vault, kind: Kind, name: string): void {
    if (!this.opts.eventGrid.listens(vault.name)) return;
    const version = vault[kind].get(name);
    this.publish(vault, { kind, name, version, event: 'NewVersionCreated' });
  }

  /** Near-expiry and expiry of the current versions, each published once per version and `exp`. */
  scan(now = Math.floor(Date.now() / 1000)): void {
    for (const vault of this.opts.vaults()) {
      if (!this.opts.eventGrid.listens(vault.name)) continue;
      for (const kind of ['secrets', 'keys', 'certificates'] as const) {
        for (const entry of (vault[kind] as { names(): { name: string; versions: Version<unknown>[] }[] }).names()) {
          const version = entry.versions.at(-1);
          const exp = version && window(kind, version).exp;
          if (!version || exp === undefined) continue;
          for (const [event, due] of [
            ['NearExpiry', exp - NEAR_EXPIRY_S],
            ['Expired', exp],
          ] as const) {
            const key = `${vault.name} ${kind} ${entry.name} ${version.version} ${exp} ${event}`;
            if (now < due || this.fired.has(key)) continue;
            this.fired.add(key);
            this.publish(vault, { kind, name: entry.name, version, event });
          }
        }
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private publish(
    vault: Vault,
    o: { kind: Kind; name: string; version: Version<unknown>; event: KeyVaultEventKind },
  ): void {
    this.opts.eventGrid.publish(vault.name, keyVaultEvent({ vault, ...o }));
  }
}
