// The manager against an apiserver that goes away: a control plane of this test's own is
// restarted while SecretSyncs are being created, and everything converges.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION } from '../src/api.js';
import { eventually } from '../../test/helpers/kube.js';
import { startOwnControlPlane, type OwnControlPlane } from '../../test/helpers/own-control-plane.js';
import { secretSync as secretSyncBody } from '../../test/helpers/fixtures.js';

const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const NS = 'restart';
let own: OwnControlPlane;

beforeAll(async () => {
  own = await startOwnControlPlane({ namespace: NS, managerArgs: ['--workers=4'] });
}, 180_000);

afterAll(() => own?.stop());

const create = (name: string) =>
  own.custom.createNamespacedCustomObject({
    ...co,
    namespace: NS,
    body: secretSyncBody({ name, spc: 'spc', data: { key: 'foo' } }),
  });

test('SecretSyncs created around an apiserver restart all become Ready', async () => {
  const before = Array.from({ length: 20 }, (_, i) => `before-${i}`);
  await Promise.all(before.map(create));
  await own.cp.restartApiserver(3_000);
  const after = Array.from({ length: 5 }, (_, i) => `after-${i}`);
  await Promise.all(after.map(create));
  await eventually(
    async () => {
      const list = (await own.custom.listNamespacedCustomObject({ ...co, namespace: NS })) as {
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      };
      const ready = list.items.filter((o) =>
        o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      ).length;
      return ready === 25 ? true : undefined;
    },
    90_000,
    'all 25 to be Ready',
  );
  expect(own.manager.child.exitCode).toBeNull();
});

test('SIGTERM lets an in-flight reconcile finish and report before the manager exits', async () => {
  own.provider.setState({ files: { foo: 'v' }, hangMs: 2_000 });
  const mounts = own.provider.requests().length;
  await create('draining');
  await eventually(
    async () => (own.provider.requests().length > mounts ? true : undefined),
    10_000,
    'the Mount to reach the provider',
  );
  expect(await own.manager.stop('SIGTERM')).toBe(0);
  const ss = (await own.custom.getNamespacedCustomObject({ ...co, namespace: NS, name: 'draining' })) as {
    status?: { conditions?: { type: string; reason: string }[] };
  };
  expect(ss.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('CreateSucceeded');
  expect(own.manager.logs()).toMatch(/"message":"stopping".*\n.*"secretSync":"restart\/draining"/);
});
