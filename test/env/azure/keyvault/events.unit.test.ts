// What the Key Vault emulator hands Event Grid: the documented event for a new version, and
// near-expiry / expiry of the current version once each as time passes.
import type { EventGrid, EventGridEvent } from '../eventgrid.js';
import { KeyVaultEvents } from './events.js';
import { Vault } from './store.js';

function harness() {
  const vault = new Vault('kv1', '00000000-0000-0000-0000-00000000000a', 'vault.azure.net');
  const published: EventGridEvent[] = [];
  const eventGrid = { listens: () => true, publish: (_v: string, e: EventGridEvent) => published.push(e) };
  const events = new KeyVaultEvents({ eventGrid: eventGrid as unknown as EventGrid, vaults: () => [vault] });
  return { vault, published, events };
}

test('near expiry 30 days before exp, then expired, each once, for the current version only', () => {
  const { vault, published, events } = harness();
  const exp = 2_000_000_000;
  const old = vault.secrets.add('db', { value: 'a' }, { exp: exp - 1_000 });
  const current = vault.secrets.add('db', { value: 'b' }, { exp });
  const at = (s: number) => {
    events.scan(s);
    return published.splice(0).map((e) => [e.eventType, e.data.Version, e.data.EXP]);
  };
  try {
    expect(at(exp - 31 * 86_400)).toEqual([]);
    expect(at(exp - 30 * 86_400)).toEqual([['Microsoft.KeyVault.SecretNearExpiry', current.version, exp]]);
    expect(at(exp - 86_400)).toEqual([]);
    expect(at(exp)).toEqual([['Microsoft.KeyVault.SecretExpired', current.version, exp]]);
    expect(at(exp + 60)).toEqual([]);
    expect(old.version).not.toBe(current.version);
  } finally {
    events.close();
  }
});

test('a new key version is published with its ObjectType and null NBF/EXP when unset', () => {
  const { vault, published, events } = harness();
  try {
    const v = vault.keys.add('signing', { privateJwk: {}, kty: 'EC', keyOps: ['sign'] }, { nbf: 1_700_000_000 });
    events.newVersion(vault, 'keys', 'signing');
    expect(published).toEqual([
      expect.objectContaining({
        topic: expect.stringMatching(/\/providers\/Microsoft\.KeyVault\/vaults\/kv1$/),
        subject: 'signing',
        eventType: 'Microsoft.KeyVault.KeyNewVersionCreated',
        data: {
          Id: `https://kv1.vault.azure.net/keys/signing/${v.version}`,
          VaultName: 'kv1',
          ObjectType: 'Key',
          ObjectName: 'signing',
          Version: v.version,
          NBF: 1_700_000_000,
          EXP: null,
        },
      }),
    ]);
  } finally {
    events.close();
  }
});
