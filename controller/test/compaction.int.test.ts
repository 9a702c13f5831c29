// A watch that fell behind compaction: the manager is cut off from the apiserver while a SecretSync
// is created and another changed, and the datastore compacts past the resourceVersion its watch
// resumes from. Back, the watch is refused with 410 Gone; the manager says so, lists afresh and
// syncs both. The control plane is this test's own: without the apiserver's watch cache, so that
// compaction itself (not the cache's window) expires the resourceVersion, and compacting every 2 s
// instead of every 5 min. Run on etcd and on kine (test/env/compat.sh), which keeps its newest
// 1000 revisions whatever the apiserver asks it to compact (--compact-min-retain), as K3s runs it.
import { SYNC_GROUP, SYNC_PLURAL, SYNC_VERSION, type SecretSync } from '../src/api.js';
import { MERGE_PATCH } from '../src/status.js';
import { apiStatus, eventually } from '../../test/helpers/kube.js';
import { startOwnControlPlane, type OwnControlPlane } from '../../test/helpers/own-control-plane.js';
import { secretSync } from '../../test/helpers/fixtures.js';

const co = { group: SYNC_GROUP, version: SYNC_VERSION, plural: SYNC_PLURAL };
const NS = 'compaction';
let own: OwnControlPlane;

beforeAll(async () => {
  own = await startOwnControlPlane({
    namespace: NS,
    apiserverArgs: ['--watch-cache=false', '--etcd-compaction-interval=2s'],
    // No rotation re-check: only the watch or a list can bring a change in.
    managerArgs: ['--rotation-poll-interval-seconds=3600'],
    relay: true,
  });
}, 180_000);

afterAll(() => own?.stop());

const create = (name: string) =>
  own.custom.createNamespacedCustomObject({ ...co, namespace: NS, body: secretSync({ name, spc: 'spc' }) });
const secretData = async (name: string) =>
  Object.fromEntries(
    Object.entries((await own.core.readNamespacedSecret({ name, namespace: NS })).data ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString(),
    ]),
  );
const synced = (name: string, expected: Record<string, string>) =>
  eventually(
    async () => {
      const ss = (await own.custom.getNamespacedCustomObject({ ...co, namespace: NS, name })) as SecretSync;
      const ready = ss.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const data = ready ? await secretData(name).catch(() => undefined) : undefined;
      return data && JSON.stringify(data) === JSON.stringify(expected) ? data : undefined;
    },
    90_000,
    `${name} to sync ${JSON.stringify(expected)}`,
  );
/** Whether the datastore has compacted `rv` away: a list at exactly that revision is then 410 Gone. */
const compacted = (rv: string) =>
  own.custom
    .listNamespacedCustomObject({ ...co, namespace: NS, resourceVersion: rv, resourceVersionMatch: 'Exact' })
    .then(
      () => false,
      (e: unknown) => {
        if (apiStatus(e) === 410) return true;
        throw e;
      },
    );

test('a SecretSync created or changed while the watch fell behind compaction syncs after the relist', async () => {
  await Promise.all([create('kept'), create('changed')]);
  await Promise.all([synced('kept', { key: 'v' }), synced('changed', { key: 'v' })]);
  const list = (await own.custom.listNamespacedCustomObject({ ...co, namespace: NS })) as {
    metadata: { resourceVersion: string };
  };
  // The manager's watch is at or before this revision.
  const cutAt = list.metadata.resourceVersion;

  own.relay!.cut();
  await create('added');
  await own.custom.patchNamespacedCustomObject(
    {
      ...co,
      namespace: NS,
      name: 'changed',
      body: { spec: { secretObject: { data: [{ sourcePath: 'foo', targetKey: 'renamed' }] } } },
    },
    MERGE_PATCH,
  );
  // Other writes, as a cluster makes, until compaction has passed the manager's revision: at once
  // on etcd, after 1000 more revisions on kine.
  let writes = 0;
  await eventually(
    async () => {
      await Promise.all(
        Array.from({ length: 100 }, () =>
          own.core.createNamespacedConfigMap({
            namespace: NS,
            body: { metadata: { name: `churn-${writes++}` }, data: { n: String(writes) } },
          }),
        ),
      );
      return (await compacted(cutAt)) ? true : undefined;
    },
    180_000,
    `the datastore to compact revision ${cutAt}`,
    2_000,
  );
  own.relay!.restore();

  await synced('added', { key: 'v' });
  await synced('changed', { renamed: 'v' });
  expect(await secretData('kept')).toEqual({ key: 'v' });
  const lines = own.manager
    .logs()
    .split('\n')
    .flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : []));
  expect(lines).toContainEqual(
    expect.objectContaining({ message: 'watch expired (410 Gone); relisting', what: 'secretsyncs' }),
  );
  expect(lines).toContainEqual(expect.objectContaining({ message: 'relisted', what: 'secretsyncs' }));
  expect(own.manager.child.exitCode).toBeNull();
}, 400_000);
