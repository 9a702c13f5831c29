// A PFX names its own key-derivation iteration counts, and node-forge runs them on the caller's
// one thread before it can fail. Measured before the budget (node-forge 1.4, 2-core machine):
// the MAC's PKCS#12 KDF at about 1.7 µs per iteration, so 2^25 took 57 s and 2^31 - 1, used
// below, would take about an hour: without the budget these tests run into Jest's timeout.
import forge from 'node-forge';
import { PKCS12_ITERATION_BUDGET, Pkcs12CostError, withPkcs12Budget } from '../src/pkcs12.js';
import { opensslPfx, withKeyBagIterations, withKeyBagsRepeated, withMacIterations } from '../../test/helpers/pfx.js';

const read = (pfx: Buffer) =>
  withPkcs12Budget(forge, () => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(pfx.toString('binary')), ''));
const keyBags = (p12: forge.pkcs12.Pkcs12Pfx) =>
  p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!]!;

function refusal(pfx: Buffer): Pkcs12CostError {
  try {
    read(pfx);
  } catch (e) {
    expect(e).toBeInstanceOf(Pkcs12CostError);
    return e as Pkcs12CostError;
  }
  throw new Error('read');
}

test("what real tools write is read: openssl's default 2 048, and 10 000 (Java's keytool) for the MAC and each safe", () => {
  expect(keyBags(read(opensslPfx()))).toHaveLength(1);
  expect(keyBags(read(opensslPfx({ iter: 10_000 })))).toHaveLength(1);
});

test('a MAC asking for 2^31 - 1 iterations is refused before any derivation', () => {
  const e = refusal(withMacIterations(opensslPfx(), 2 ** 31 - 1));
  expect(e).toMatchObject({ asked: 2 ** 31 - 1, budget: PKCS12_ITERATION_BUDGET });
  expect(e.message).toContain('asks for 2147483647 key-derivation iterations, over the 100000');
});

test("a shrouded key's PBKDF2 count of 2^31 - 1 is refused (the MAC's count is the file's own)", () => {
  expect(refusal(withKeyBagIterations(opensslPfx({ noMac: true }), 2 ** 31 - 1)).asked).toBe(2 ** 31 - 1);
});

test('many derivations within the per-file budget add up: 60 key bags at 2 048 each are refused', () => {
  expect(keyBags(read(withKeyBagsRepeated(opensslPfx({ noMac: true }), 3)))).toHaveLength(3);
  expect(refusal(withKeyBagsRepeated(opensslPfx({ noMac: true }), 60)).asked).toBe(2048);
});

test('outside a read, forge derives as before: tools that write PFX files are not limited', () => {
  read(opensslPfx());
  expect(
    forge.pkcs12.generateKey('', forge.util.createBuffer('salt'), 3, PKCS12_ITERATION_BUDGET + 1, 20).length(),
  ).toBe(20);
});

test("PBKDF2, run natively in a read, derives RFC 7914's test vector from forge's arguments", () => {
  const derived = withPkcs12Budget(forge, () => forge.pkcs5.pbkdf2('passwd', 'salt', 1, 64, forge.md.sha256.create()));
  expect(Buffer.from(derived, 'binary').toString('hex')).toBe(
    '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783',
  );
});
