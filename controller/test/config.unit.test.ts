// The command line: what the manager refuses to start with.
import { expectHelpDescribesEveryFlag } from '../../test/helpers/flags.js';
import { ConfigError, DEFAULT_ALLOWED_TYPES, FLAGS, parseConfig, usage, type Config } from '../src/config.js';

const parse = (...argv: string[]) => parseConfig(argv, {}) as Config;

test('the default allowed types are taken as they are', () => {
  expect(parse().allowedSecretTypes).toEqual(DEFAULT_ALLOWED_TYPES);
  expect(parse('--allowed-secret-types=Opaque, bootstrap.kubernetes.io/token').allowedSecretTypes).toEqual([
    'Opaque',
    'bootstrap.kubernetes.io/token',
  ]);
});

test('service-account tokens are refused at start, whatever the flag lists', () => {
  for (const flag of [
    '--allowed-secret-types=kubernetes.io/service-account-token',
    '--allowed-secret-types=Opaque,kubernetes.io/service-account-token',
  ]) {
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

test('health and metrics listen where their own flags say, else at --http-bind-address; only IP literals', () => {
  expect(parse()).toMatchObject({ healthBindAddress: '0.0.0.0', metricsBindAddress: '0.0.0.0' });
  expect(parse('--http-bind-address=::')).toMatchObject({ healthBindAddress: '::', metricsBindAddress: '::' });
  // The chart with hostNetwork: health on the node's loopback, metrics on the node's address.
  expect(parse('--health-bind-address=127.0.0.1', '--metrics-bind-address=10.1.2.3')).toMatchObject({
    healthBindAddress: '127.0.0.1',
    metricsBindAddress: '10.1.2.3',
  });
  expect(() => parse('--metrics-bind-address=localhost')).toThrow(/--metrics-bind-address must be an IP address/);
  expect(() => parse('--http-bind-address=')).toThrow(/--http-bind-address must be an IP address/);
});

test('one namespace may hold half the workers (rounded up) by default, at most all of them', () => {
  expect(parse().workersPerNamespace).toBe(5);
  expect(parse('--workers=7').workersPerNamespace).toBe(4);
  expect(parse('--workers=1').workersPerNamespace).toBe(1);
  expect(parse('--workers=8', '--workers-per-namespace=8').workersPerNamespace).toBe(8);
  expect(() => parse('--workers=8', '--workers-per-namespace=9')).toThrow(ConfigError);
  expect(() => parse('--workers-per-namespace=0')).toThrow(ConfigError);
});

test('expiry checks of one SecretSync: at most every 5 minutes by default, 1 s at the least', () => {
  expect(parse().expiryCheckMinIntervalSeconds).toBe(300);
  expect(parse('--expiry-check-min-interval-seconds=10').expiryCheckMinIntervalSeconds).toBe(10);
  expect(() => parse('--expiry-check-min-interval-seconds=0')).toThrow(ConfigError);
});

test('--help describes every flag the parser accepts, and the README lists each', () => {
  expectHelpDescribesEveryFlag({
    flags: FLAGS,
    usage: usage(),
    parse: (argv) => parseConfig(argv, {}),
    readmeSection: '## Reference: the manager',
  });
});

test('token audiences are per provider: by default only azure gets the workload identity audience', () => {
  expect(parse().providerTokenAudiences).toEqual(new Map([['azure', ['api://AzureADTokenExchange']]]));
  // Entries add to the default; one provider's audiences never reach another.
  expect(
    parse('--provider-token-audiences=vault=vault', '--provider-token-audiences=e2e= aud-a , aud-b,aud-a')
      .providerTokenAudiences,
  ).toEqual(
    new Map([
      ['azure', ['api://AzureADTokenExchange']],
      ['vault', ['vault']],
      ['e2e', ['aud-a', 'aud-b']],
    ]),
  );
  // PROVIDER= sends that provider none; a provider not listed gets none.
  expect(parse('--provider-token-audiences=azure=').providerTokenAudiences).toEqual(new Map());
  expect(parse('--provider-token-audiences=azure=api://other').providerTokenAudiences.get('azure')).toEqual([
    'api://other',
  ]);
});

test('a malformed or repeated --provider-token-audiences entry is refused, naming the flag', () => {
  for (const [argv, message] of [
    [['--provider-token-audiences=vault'], /PROVIDER=AUDIENCE/],
    [['--provider-token-audiences==vault'], /PROVIDER=AUDIENCE/],
    [['--provider-token-audiences=../x=vault'], /provider name of 1-30 letters/],
    [['--provider-token-audiences=vault=a', '--provider-token-audiences=vault=b'], /names provider 'vault' twice/],
  ] as const) {
    let err: unknown;
    try {
      parse(...argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ flag: 'provider-token-audiences', message: expect.stringMatching(message) as unknown });
  }
});

test('the old --token-audiences, which gave every provider the same tokens, is refused with what replaces it', () => {
  for (const flag of ['--token-audiences=api://AzureADTokenExchange', '--token-audiences=']) {
    expect(() => parse(flag)).toThrow(ConfigError);
    expect(() => parse(flag)).toThrow(
      /--provider-token-audiences=PROVIDER=AUDIENCE.*azure=api:\/\/AzureADTokenExchange/,
    );
  }
});

test('restarts are off unless --restarts=true; their window and interval are bounded', () => {
  expect(parse().restarts).toEqual({ enabled: false, debounceSeconds: 30, minIntervalSeconds: 300 });
  expect(parse('--restarts=true', '--restart-debounce-seconds=5', '--restart-min-interval-seconds=0').restarts).toEqual(
    { enabled: true, debounceSeconds: 5, minIntervalSeconds: 0 },
  );
  expect(() => parse('--restarts=yes')).toThrow(/--restarts must be true or false/);
  expect(() => parse('--restart-debounce-seconds=0')).toThrow(/--restart-debounce-seconds must be a whole number/);
});
