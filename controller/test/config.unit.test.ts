// The command line: what the manager refuses to start with.
import { ConfigError, DEFAULT_ALLOWED_TYPES, parseConfig, type Config } from '../src/config.js';

const parse = (...argv: string[]) => parseConfig(argv, {}) as Config;

test('the default allowed types are taken as they are', () => {
  expect(parse().allowedSecretTypes).toEqual(DEFAULT_ALLOWED_TYPES);
  expect(parse('--allowed-secret-types=Opaque, bootstrap.kubernetes.io/token').allowedSecretTypes).toEqual(['Opaque', 'bootstrap.kubernetes.io/token']);
});

test('service-account tokens are refused at start, whatever the flag lists', () => {
  for (const flag of ['--allowed-secret-types=kubernetes.io/service-account-token', '--allowed-secret-types=Opaque,kubernetes.io/service-account-token']) {
    let err: unknown;
    try {
      parse(flag);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).flag).toBe('allowed-secret-types');
  }
});
