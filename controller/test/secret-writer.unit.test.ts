// The writer's own refusal of types the manager never writes (config refuses them at start too).
import type { CoreV1Api } from '@kubernetes/client-node';
import type { SecretSync } from '../src/api.js';
import { createMetrics } from '../src/metrics.js';
import { SyncError } from '../src/reasons.js';
import { SecretWriter } from '../src/secret-writer.js';

const ss = { metadata: { name: 's', namespace: 'n', uid: 'u-s' }, spec: {} } as unknown as SecretSync;

test('a service-account token is never sent to the apiserver, in any write mode', async () => {
  const sent: string[] = [];
  const core = {
    async createNamespacedSecret() {
      sent.push('create');
      return { metadata: { resourceVersion: '1' } };
    },
    async patchNamespacedSecret() {
      sent.push('patch');
      return { metadata: { resourceVersion: '2' } };
    },
  } as unknown as CoreV1Api;
  const writer = new SecretWriter(core, createMetrics());
  const desired = {
    type: 'kubernetes.io/service-account-token',
    data: { token: Buffer.from('x') },
    labels: {},
    annotations: {},
  };
  for (const mode of ['create', 'update', 'reassert'] as const) {
    const err = await writer.write(ss, desired, mode).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).kind).toBe('userInput');
  }
  expect(sent).toEqual([]);
  // The same writer still writes an allowed type.
  await expect(writer.write(ss, { ...desired, type: 'Opaque' }, 'create')).resolves.toBe('created');
});
