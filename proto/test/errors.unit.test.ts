// The helpers that narrow a caught `unknown`, and the context a ProviderError carries as fields.
import { errorCode, errorMessage, errorStack, ProviderError } from '../src/errors.js';

test('errorMessage takes an error-like message and falls back to the value as text', () => {
  expect(errorMessage(new Error('boom'))).toBe('boom');
  expect(errorMessage({ message: 'from a plain object' })).toBe('from a plain object');
  expect(errorMessage({ message: undefined })).toBe('[object Object]');
  expect(errorMessage('a string')).toBe('a string');
  expect(errorMessage(undefined)).toBe('undefined');
});

test('errorCode returns a string or number code only', () => {
  expect(errorCode(Object.assign(new Error('x'), { code: 409 }))).toBe(409);
  expect(errorCode({ code: 'ENOENT' })).toBe('ENOENT');
  expect(errorCode({ code: { nested: 1 } })).toBeUndefined();
  expect(errorCode(null)).toBeUndefined();
  expect(errorCode(7)).toBeUndefined();
});

test('errorStack is the stack, or the value as text', () => {
  expect(errorStack(new Error('boom'))).toMatch(/^Error: boom\n/);
  expect(errorStack(42)).toBe('42');
});

test('a ProviderError carries its context as fields, and the cause only when given', () => {
  const e = new ProviderError('NotFound', 'gone', 'SecretNotFound', {
    context: { vault: 'kv', object: "secret 'db'", version: 'v1' },
  });
  expect(e.context).toEqual({ vault: 'kv', object: "secret 'db'", version: 'v1' });
  expect('cause' in e).toBe(false);
  expect(new ProviderError('Internal', 'x').context).toEqual({});
  expect(new ProviderError('Internal', 'x', undefined, { cause: 1 }).cause).toBe(1);
});
