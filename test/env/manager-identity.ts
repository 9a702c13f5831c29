// The manager's identity as in the pod: the ServiceAccount, RBAC and policies from deploy/manifests, and a
// kubeconfig that authenticates with a token minted for that ServiceAccount (no admin rights).
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyManifests, repoRoot, yamlFilesIn } from './control-plane.js';
import type { StackInfo } from './stack.js';
import { servesAdmissionPolicies } from './versions.js';

export const MANAGER_NAMESPACE = 'azure-secret-store';
export const MANAGER_SERVICE_ACCOUNT = 'secret-store-sync-manager';

/**
 * Applies the plain-manifest form of the chart (its RBAC and admission policies included) and
 * writes a kubeconfig for the manager's ServiceAccount into `dir`: the manager then runs exactly
 * as in the pod, under the chart's permissions and policies.
 */
export async function managerKubeconfig(
  info: StackInfo,
  dir: string,
  expirationSeconds = 24 * 3600,
  server = info.k8s.server,
): Promise<string> {
  const admin = new KubeConfig();
  admin.loadFromFile(info.k8s.kubeconfig);
  // The policies file only where its API is served, as README tells a 1.27-1.29 cluster's admin.
  const files = yamlFilesIn(join(repoRoot, 'deploy', 'manifests')).filter(
    (f) => servesAdmissionPolicies(info.k8s.version) || !f.endsWith('admission-policies.yaml'),
  );
  await applyManifests(admin, files);
  return serviceAccountKubeconfig(
    info,
    MANAGER_NAMESPACE,
    MANAGER_SERVICE_ACCOUNT,
    join(dir, 'manager.kubeconfig'),
    expirationSeconds,
    server,
  );
}

/** A kubeconfig that authenticates as the ServiceAccount with a token minted for it. */
/** `server`: where the kubeconfig points (another address of the same apiserver, e.g. a relay a test can cut). */
export async function serviceAccountKubeconfig(
  info: StackInfo,
  namespace: string,
  serviceAccount: string,
  file: string,
  expirationSeconds = 24 * 3600,
  server = info.k8s.server,
): Promise<string> {
  const admin = new KubeConfig();
  admin.loadFromFile(info.k8s.kubeconfig);
  const tr = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [info.k8s.issuer], expirationSeconds } },
  });
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: local-stack, cluster: {server: "${server}", certificate-authority: "${info.k8s.caFile}"}}]`,
      `users: [{name: ${serviceAccount}, user: {token: "${tr.status!.token}"}}]`,
      `contexts: [{name: sa, context: {cluster: local-stack, user: ${serviceAccount}, namespace: ${namespace}}}]`,
      'current-context: sa',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return file;
}
