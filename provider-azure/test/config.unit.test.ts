// The provider's command line: where its HTTP listeners bind and how often it checks itself.
import { expectHelpDescribesEveryFlag } from '../../test/helpers/flags.js';
import { FLAGS, parseConfig, usage, type Config } from '../src/config.js';

const parse = (...argv: string[]) => parseConfig(argv) as Config;

test('/healthz and /metrics listen where their own flags say, else at --http-bind-address; only IP literals', () => {
  expect(parse()).toMatchObject({
    healthzBindAddress: '0.0.0.0',
    metricsBindAddress: '0.0.0.0',
    healthzCheckIntervalSeconds: 10,
  });
  expect(parse('--http-bind-address=127.0.0.1', '--metrics-bind-address=10.1.2.3')).toMatchObject({
    healthzBindAddress: '127.0.0.1',
    metricsBindAddress: '10.1.2.3',
  });
  expect(() => parse('--healthz-bind-address=my-node')).toThrow(/--healthz-bind-address must be an IP address/);
  expect(() => parse('--healthz-check-interval-seconds=0')).toThrow(
    /--healthz-check-interval-seconds must be a whole number from 1/,
  );
});

test('--help describes every flag the parser accepts, and the README lists each', () => {
  expectHelpDescribesEveryFlag({
    flags: FLAGS,
    usage: usage(),
    parse: (argv) => parseConfig(argv),
    readmeSection: '## Reference: provider-azure',
  });
});
