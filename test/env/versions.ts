// The Kubernetes releases the stack can run. The guide's minimum is 1.27; 1.30 is the first with
// ValidatingAdmissionPolicy v1; the newest is what the rest of the suite runs on. Each is built from
// the Go module proxy into a cache folder of its own (build-control-plane.sh).
export const KUBE_VERSIONS = {
  '1.27': '1.27.16',
  '1.30': '1.30.14',
  '1.36': '1.36.3',
} as const;

export type KubeMinor = keyof typeof KUBE_VERSIONS;

export const NEWEST_KUBE_VERSION: string = KUBE_VERSIONS['1.36'];

/**
 * '1.27' → the patch release this project builds; '1.27.16' is taken as given. Undefined → the
 * K8S_VERSION environment variable (the build script's own), else the newest.
 */
export function resolveKubeVersion(v: string | undefined = process.env.K8S_VERSION): string {
  if (!v) return NEWEST_KUBE_VERSION;
  const bare = v.replace(/^v/, '');
  if (bare in KUBE_VERSIONS) return KUBE_VERSIONS[bare as KubeMinor];
  if (!/^1\.\d+\.\d+$/.test(bare)) {
    throw new Error(`Kubernetes version '${v}': give a minor (${Object.keys(KUBE_VERSIONS).join(', ')}) or 1.N.P`);
  }
  return bare;
}

export function kubeMinorOf(version: string): number {
  return Number(version.split('.')[1]);
}

// kube-controller-manager's --controllers took short names until 1.27; 1.28 renamed each to its
// '-controller' name and refuses the old ones (as 1.27 refuses the new).
const LEGACY_CONTROLLER_NAMES: Record<string, string> = {
  'garbage-collector-controller': 'garbagecollector',
  'namespace-controller': 'namespace',
  'serviceaccount-controller': 'serviceaccount',
  'clusterrole-aggregation-controller': 'clusterrole-aggregation',
  'deployment-controller': 'deployment',
  'replicaset-controller': 'replicaset',
  'root-ca-certificate-publisher-controller': 'root-ca-cert-publisher',
  'node-lifecycle-controller': 'nodelifecycle',
};

/** The --controllers value for `version`, from today's names. */
export function controllersFlag(version: string, names: string[]): string {
  if (kubeMinorOf(version) >= 28) return `--controllers=${names.join(',')}`;
  return `--controllers=${names.map((n) => LEGACY_CONTROLLER_NAMES[n] ?? n).join(',')}`;
}

/**
 * Whether a cluster of `version` serves ValidatingAdmissionPolicy v1 (GA and on by default from
 * 1.30), which the chart's admission policies need; 1.28-1.29 serve v1beta1 only when enabled.
 */
export function servesAdmissionPolicies(version: string): boolean {
  return kubeMinorOf(version) >= 30;
}

/** `--kube-version <v>` or `--kube-version=<v>`, anywhere in argv. */
export function takeKubeVersion(argv: string[]): { kubeVersion?: string; rest: string[]; error?: string } {
  const rest: string[] = [];
  let kubeVersion: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--kube-version') {
      kubeVersion = argv[++i];
      if (!kubeVersion) return { rest, error: '--kube-version needs a version, e.g. 1.27' };
    } else if (a.startsWith('--kube-version=')) kubeVersion = a.slice('--kube-version='.length);
    else rest.push(a);
  }
  return { kubeVersion, rest };
}
