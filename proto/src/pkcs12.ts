// PKCS#12 read with node-forge under a budget of key-derivation iterations. A PFX names its own
// iteration counts (the MAC's, and each encrypted bag's), and node-forge runs them all on the
// caller's thread before it can fail: a 104-byte PFX asking for 2^25 cost the manager 60-100 s,
// 2^31 an hour. Counts are checked as each derivation is asked for, so a count hidden inside an
// encrypted safe is caught too, and nothing is derived past the budget.
import { pbkdf2Sync } from 'node:crypto';

/**
 * Iterations one file may ask for, all derivations together. Real tools write far fewer:
 * OpenSSL 2 048 for the MAC and for each encryption (PKCS12_DEFAULT_ITER, `openssl pkcs12
 * -export`); Java's keytool 10 000 each (keystore.pkcs12.macIterationCount,
 * certPbeIterationCount, keyPbeIterationCount). node-forge's PKCS#12 KDF (the MAC, legacy
 * encryption) takes about 1.9 µs per iteration, and PBKDF2 is run natively here (0.24 µs), so the
 * budget bounds a read's derivations at about 190 ms.
 */
export const PKCS12_ITERATION_BUDGET = 100_000;

export class Pkcs12CostError extends Error {
  constructor(
    /** The count the file asked for in the derivation that went over. */
    readonly asked: number,
    readonly budget: number,
  ) {
    super(
      `the PKCS#12 file asks for ${asked} key-derivation iterations, over the ${budget} this reader allows a file (OpenSSL writes 2048, Java's keytool 10000)`,
    );
    this.name = 'Pkcs12CostError';
  }
}

type Kdf = (...args: never[]) => unknown;
/**
 * The parts of node-forge that derive keys from a password: every path of its PKCS#12 reader
 * (the MAC; PKCS#12 PBE and PBES2 for encrypted safes and shrouded keys). Its type declarations
 * leave out `pki.pbe`, so the module is taken as an object and checked here.
 */
interface ForgeKdfs {
  pkcs5: { pbkdf2: Kdf };
  pkcs12: { generateKey: Kdf };
  pki: { pbe: { generatePkcs12Key: Kdf } };
}

function kdfsOf(forge: object): ForgeKdfs {
  const f = forge as Partial<ForgeKdfs>;
  // A node-forge without them would derive unguarded: refuse to read rather than stall.
  if (
    typeof f.pkcs5?.pbkdf2 !== 'function' ||
    typeof f.pkcs12?.generateKey !== 'function' ||
    typeof f.pki?.pbe?.generatePkcs12Key !== 'function'
  ) {
    throw new Error('this node-forge has no key-derivation functions where expected; PKCS#12 is not read unbounded');
  }
  return f as ForgeKdfs;
}

const ITERATIONS_ARG = { pbkdf2: 2, generateKey: 3, generatePkcs12Key: 3 } as const;
const guarded = new WeakSet<object>();
let budget: { left: number } | undefined;

/**
 * node-forge runs PBKDF2 in JavaScript unless the digest is named by a string, and its PKCS#12
 * reader passes a digest object: 8.6 µs an iteration against Node's 0.24 for HMAC-SHA256.
 */
const NATIVE_DIGESTS = new Set(['sha1', 'sha224', 'sha256', 'sha384', 'sha512']);
function nativePbkdf2(original: Kdf): Kdf {
  return function (this: unknown, ...args: never[]) {
    const [password, salt, iterations, keyLength, md] = args as unknown as [
      string,
      string,
      number,
      number,
      { algorithm?: string } | string | undefined,
    ];
    const digest = typeof md === 'string' ? md : (md?.algorithm ?? 'sha1');
    if (!NATIVE_DIGESTS.has(digest) || typeof password !== 'string' || typeof salt !== 'string' || args.length > 5)
      return original.apply(this, args);
    return pbkdf2Sync(
      Buffer.from(password, 'binary'),
      Buffer.from(salt, 'binary'),
      iterations,
      keyLength,
      digest,
    ).toString('binary');
  } as Kdf;
}

function guard<K extends keyof typeof ITERATIONS_ARG>(owner: Record<K, Kdf>, name: K): void {
  const original = owner[name];
  owner[name] = function (this: unknown, ...args: never[]) {
    if (budget) {
      const asked = Number(args[ITERATIONS_ARG[name]]);
      if (!(asked <= budget.left)) throw new Pkcs12CostError(asked, PKCS12_ITERATION_BUDGET);
      budget.left -= asked;
    }
    return original.apply(this, args);
  } as Kdf;
}

/**
 * Runs `read` (synchronous node-forge PKCS#12 work) with every key derivation counted against
 * PKCS12_ITERATION_BUDGET; throws Pkcs12CostError before the derivation that would go over.
 * Outside `read`, forge derives as before (tests and tools that write PFX files).
 */
export function withPkcs12Budget<T>(forge: object, read: () => T): T {
  if (!guarded.has(forge)) {
    const kdfs = kdfsOf(forge);
    kdfs.pkcs5.pbkdf2 = nativePbkdf2(kdfs.pkcs5.pbkdf2);
    guard(kdfs.pkcs5, 'pbkdf2');
    guard(kdfs.pkcs12, 'generateKey');
    guard(kdfs.pki.pbe, 'generatePkcs12Key');
    guarded.add(forge);
  }
  budget = { left: PKCS12_ITERATION_BUDGET };
  try {
    return read();
  } finally {
    budget = undefined;
  }
}
