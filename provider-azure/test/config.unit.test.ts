// The provider's command line: where its HTTP listeners bind, how often it checks itself, and how
// long reads are shared.
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

test('the share window with events is held to the authorization window, and never below the one without', () => {
  expect(parse()).toMatchObject({ readShareSeconds: 2, readShareWithEvents: { seconds: 60, asked: 60 } });
  expect(parse('--read-share-seconds-with-events=300').readShareWithEvents).toEqual({ seconds: 60, asked: 300 });
  expect(parse('--read-share-seconds-with-events=300', '--cache-auth-window-seconds=600').readShareWithEvents).toEqual({
    seconds: 300,
    asked: 300,
  });
  expect(parse('--cache-auth-window-seconds=30').readShareWithEvents).toEqual({ seconds: 30, asked: 60 });
  expect(parse('--read-share-seconds=10', '--read-share-seconds-with-events=0').readShareWithEvents).toEqual({
    seconds: 10,
    asked: 0,
  });
  expect(() => parse('--read-share-seconds-with-events=301')).toThrow(
    /--read-share-seconds-with-events must be a whole number from 0 to 300/,
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

describe('the change queue', () => {
  const url = '--change-queue-url=https://acct.queue.core.windows.net/kv-events';
  const wi = {
    AZURE_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
    AZURE_TENANT_ID: '22222222-2222-2222-2222-222222222222',
    AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token',
  };

  test('is off without a URL; on, its workload identity comes from the flags or the webhook-injected variables', () => {
    expect(parseConfig([], wi)).toMatchObject({ changeQueue: undefined });
    expect(parseConfig([url], wi)).toMatchObject({
      changeQueuePollSeconds: 1,
      changeQueue: {
        url: 'https://acct.queue.core.windows.net/kv-events',
        identity: {
          mode: 'workloadIdentity',
          clientId: wi.AZURE_CLIENT_ID,
          tenantId: wi.AZURE_TENANT_ID,
          tokenFile: wi.AZURE_FEDERATED_TOKEN_FILE,
        },
      },
    });
    const flags = [
      url,
      '--change-queue-client-id=33333333-3333-3333-3333-333333333333',
      '--change-queue-tenant-id=44444444-4444-4444-4444-444444444444',
      '--change-queue-token-file=/t/token',
    ];
    expect(parseConfig(flags, {})).toMatchObject({
      changeQueue: {
        identity: {
          clientId: '33333333-3333-3333-3333-333333333333',
          tenantId: '44444444-4444-4444-4444-444444444444',
          tokenFile: '/t/token',
        },
      },
    });
    expect(parseConfig([url, '--change-queue-identity=managed-identity'], {})).toMatchObject({
      changeQueue: { identity: { mode: 'managedIdentity' } },
    });
  });

  test('refuses what it could not use: a SAS in the URL, no queue name, an incomplete workload identity', () => {
    expect(() => parseConfig([`${url}?sv=2024&sig=abc`], wi)).toThrow(/no query/);
    expect(() => parseConfig(['--change-queue-url=https://acct.queue.core.windows.net/'], wi)).toThrow(
      /change-queue-url/,
    );
    expect(() => parseConfig(['--change-queue-url=http://acct.queue.core.windows.net/q1'], wi)).toThrow(
      /change-queue-url/,
    );
    expect(() => parseConfig(['--change-queue-url=https://127.0.0.1:10001/acct/q1'], wi)).toThrow(/DNS name/);
    expect(() => parseConfig(['--change-queue-url=https://acct.queue.core.windows.net:8443/q1'], wi)).toThrow(
      /DNS name/,
    );
    expect(() => parseConfig([url], {})).toThrow(/needs a client ID/);
    expect(() => parseConfig([url, '--change-queue-identity=pod-identity'], wi)).toThrow(
      /workload-identity or managed-identity/,
    );
    expect(() => parseConfig([url, '--change-queue-client-id=me'], wi)).toThrow(/GUID/);
  });
});
