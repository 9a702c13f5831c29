// Key Vault and identity failures as ProviderErrors: where they happened travels as fields, so
// nothing reads a message to tell whether it already names its vault or is a disabled version.
import { ProviderError } from '@secret-store-sync/proto';
import { disabledVersion, isDisabled, toProviderError } from '../src/errors.js';

test('an error from below the SDK gets the vault and object once', () => {
  const raw = new ProviderError('Unavailable', 'IMDS gave no token', 'ManagedIdentityTimeout', {
    context: { timedOut: 'IMDS' },
  });
  const wrapped = toProviderError(raw, 'kv1', "secret 'db'");
  expect(wrapped.message).toBe("vault 'kv1': secret 'db': IMDS gave no token");
  expect(wrapped.reason).toBe('ManagedIdentityTimeout');
  expect(wrapped.context).toEqual({ vault: 'kv1', object: "secret 'db'", timedOut: 'IMDS' });
  expect(toProviderError(wrapped, 'kv1', "secret 'db'")).toBe(wrapped);
  // Another vault's error is named for this one too, as the message prefix did before.
  expect(toProviderError(wrapped, 'kv2', "secret 'db'").message).toBe(
    "vault 'kv2': secret 'db': vault 'kv1': secret 'db': IMDS gave no token",
  );
});

test('an SDK failure carries the vault and object as fields', () => {
  const e = toProviderError(
    Object.assign(new Error('gone'), { statusCode: 404, code: 'SecretNotFound' }),
    'kv1',
    "secret 'db' version 'v1'",
  );
  expect(e.message).toBe("vault 'kv1': secret 'db' version 'v1': not found in the vault");
  expect(e.context).toEqual({ vault: 'kv1', object: "secret 'db' version 'v1'" });
});

test('disabled versions are told by reason, not by the text of one', () => {
  const key = disabledVersion('kv1', 'key', 'k', 'v2');
  expect(key.message).toBe(
    "vault 'kv1': key 'k' version 'v2': the version is disabled in Key Vault; enable it or point objectVersion at an enabled one",
  );
  expect(key.context).toEqual({ vault: 'kv1', object: "key 'k'", version: 'v2' });
  expect(isDisabled(key)).toBe(true);
  expect(isDisabled(disabledVersion('kv1', 'certificate', 'c', 'v'))).toBe(true);
  const refused = toProviderError(
    Object.assign(new Error('Operation get is not allowed on a disabled secret.'), {
      statusCode: 403,
      code: 'Forbidden',
      details: { error: { innerError: { code: 'SecretDisabled' } } },
    }),
    'kv1',
    "secret 's'",
  );
  expect(isDisabled(refused)).toBe(true);
  expect(isDisabled(new ProviderError('PermissionDenied', 'x', 'ForbiddenByRbac'))).toBe(false);
  expect(isDisabled(new Error('SecretDisabled'))).toBe(false);
});
