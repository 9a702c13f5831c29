// Every text the manager writes for a user comes from its catalog (src/messages.ts): SyncError, the
// conditions and the Event recorder take only the catalog's branded types, so the compiler refuses
// a text written anywhere else — unless a cast makes one. This test finds such casts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { SecretSync } from '../src/api.js';
import { EventRecorder } from '../src/events.js';
import type { Logger } from '../src/log.js';
import { FAILURES } from '../src/messages.js';
import { SyncError } from '../src/reasons.js';

const src = join(dirname(fileURLToPath(import.meta.url)), '../src');

test('no source file but the catalog makes a Text or Failure by a cast', () => {
  const casts = readdirSync(src)
    .filter((f) => f.endsWith('.ts') && f !== 'messages.ts')
    .flatMap((f) =>
      [
        ...readFileSync(join(src, f), 'utf8').matchAll(
          /\bas\s+(?:unknown\s+as\s+)?(?:Text|Failure)\b|<(?:Text|Failure)>/g,
        ),
      ].map((m) => `${f}: ${m[0]}`),
    );
  expect(casts).toEqual([]);
});

test('SyncError, the conditions and Events take no free text (checked by the compiler: npm run typecheck)', () => {
  const ss = { metadata: { name: 's', namespace: 'n', uid: 'u' } } as SecretSync;
  const events = new EventRecorder({} as CoreV1Api, { instance: 'pod', log: {} as Logger });
  const make = () => {
    // @ts-expect-error: a free string is not a catalog entry
    new SyncError('userInput', 'a message written here');
    // @ts-expect-error: nor is a hand-made failure's text
    new SyncError({ kind: 'userInput', retry: 'slow', text: 'a message written here' });
    // @ts-expect-error: an Event's message comes from the catalog too
    events.record(ss, 'Warning', 'UserInputValidationFailed', 'a message written here');
  };
  expect(typeof make).toBe('function');
  expect(new SyncError(FAILURES.noKeys()).message).toBe('spec.secretObject.data lists no keys');
});
