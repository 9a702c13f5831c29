// The secretsync_status gauge's counting: SecretSyncs of this manager by their Ready reason.
import type { SecretSync } from '../src/api.js';
import { countByReadyReason } from '../src/status.js';
import { condition, secretSync } from '../../test/helpers/fixtures.js';

const ss = (name: string, ready?: string, controller?: string): SecretSync =>
  secretSync({
    name,
    namespace: 'n',
    sa: 'sa',
    spc: 'spc',
    type: 'Opaque',
    data: [],
    controllerName: controller || undefined,
    status: ready
      ? { conditions: [condition('SecretCreated', 'True', 'CreateSucceeded'), condition('Ready', 'False', ready)] }
      : undefined,
  });

test('counts by the Ready reason; None before the first reconcile', () => {
  const counts = countByReadyReason(
    [ss('a', 'CreateSucceeded'), ss('b', 'CreateSucceeded'), ss('c', 'UpdateFailedProviderError'), ss('d')],
    '',
  );
  expect(Object.fromEntries(counts)).toEqual({ CreateSucceeded: 2, UpdateFailedProviderError: 1, None: 1 });
});

test("counts only the SecretSyncs of this manager's controller name", () => {
  const list = [
    ss('a', 'CreateSucceeded'),
    ss('b', 'ControllerSpcError', 'shard-1'),
    ss('c', 'CreateSucceeded', 'shard-1'),
  ];
  expect(Object.fromEntries(countByReadyReason(list, 'shard-1'))).toEqual({
    ControllerSpcError: 1,
    CreateSucceeded: 1,
  });
  expect(Object.fromEntries(countByReadyReason(list, ''))).toEqual({ CreateSucceeded: 1 });
});

test('a reason written by someone else is Other, so a tenant cannot mint label values', () => {
  const list = [ss('a', 'x'.repeat(200)), ss('b', 'constructor'), ss('c', '__proto__'), ss('d', 'ObjectExpired')];
  expect(Object.fromEntries(countByReadyReason(list, ''))).toEqual({ Other: 4 });
});
