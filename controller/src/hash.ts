// A keyed hash (HMAC-SHA256) of everything the manager writes into a Secret. Stored in status, it
// tells whether a write is needed without reading the Secret, reveals nothing about the values
// without the key, and costs microseconds — unlike a slow KDF on every reconcile.
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface HashInput {
  secretSyncUid: string;
  type: string;
  data: Record<string, Buffer>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  forceSynchronization: string;
}

export class Hasher {
  constructor(private readonly key: Buffer) {}

  static fromFile(file: string | undefined): { hasher: Hasher; generated: boolean } {
    if (file) {
      const key = readFileSync(file);
      if (key.length < 16) throw new Error(`the hash key in ${file} is shorter than 16 bytes`);
      return { hasher: new Hasher(key), generated: false };
    }
    return { hasher: new Hasher(randomBytes(32)), generated: true };
  }

  hash(input: HashInput): string {
    const h = createHmac('sha256', this.key);
    // Length-prefixed fields in a fixed order: no two different inputs serialize alike.
    const field = (s: string | Buffer) => {
      const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
      h.update(`${b.length}:`);
      h.update(b);
    };
    const map = (m: Record<string, string | Buffer>) => {
      const keys = Object.keys(m).sort();
      field(String(keys.length));
      for (const k of keys) {
        field(k);
        field(m[k]!);
      }
    };
    field('v2');
    field(input.secretSyncUid);
    field(input.type);
    map(input.data);
    map(input.labels);
    map(input.annotations);
    field(input.forceSynchronization);
    return `hmac-sha256:${h.digest('hex')}`;
  }
}
