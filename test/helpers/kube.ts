// Kubernetes helpers for integration tests: clients on the stack's admin kubeconfig and a fresh
// namespace per test file.
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { loadStackInfo } from '../env/stack.js';

export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(loadStackInfo().k8s.kubeconfig);
  return kc;
}

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
}

export function kube(kc = adminKubeConfig()): Kube {
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    objects: KubernetesObjectApi.makeApiClient(kc),
  };
}

/** A namespace of its own for one test file; deleted (not awaited) afterwards. */
export async function tempNamespace(
  core: CoreV1Api,
  prefix = 't',
): Promise<{ name: string; dispose: () => Promise<void> }> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`.slice(0, 63);
  await core.createNamespace({ body: { metadata: { name, labels: { 'secret-store-sync.test/temp': 'true' } } } });
  return {
    name,
    dispose: async () =>
      void (await core.deleteNamespace({ name, propagationPolicy: 'Background' }).catch(() => undefined)),
  };
}

/** Waits for the namespace's `default` ServiceAccount, which kube-controller-manager makes. */
export async function defaultServiceAccount(core: CoreV1Api, namespace: string): Promise<void> {
  await eventually(
    async () =>
      (await core.readNamespacedServiceAccount({ name: 'default', namespace }).catch(() => undefined))
        ? true
        : undefined,
    30_000,
    'the default ServiceAccount',
  );
}

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function apiStatus(e: unknown): number | undefined {
  return (e as { code?: number }).code;
}

/** How many times the Events say it happened: the manager aggregates repeats into one Event's count. */
export function occurrences(events: { count?: number }[]): number {
  return events.reduce((n, e) => n + (e.count ?? 1), 0);
}
