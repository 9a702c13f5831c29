// The walkthrough of `npm run sandbox` (sandbox.ts): the Secret Store extension guide, replayed step
// by step on the local stack — a real kube-apiserver, the Entra ID stand-in and the Key Vault
// emulator — with provider-azure and the manager as two processes sharing a socket folder, the
// manager under its own ServiceAccount; with --pod, the chart's Deployment on a node of the stack.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AzureStack } from '../env/azure/client.js';
import { repoRoot, yamlFilesIn } from '../env/control-plane.js';
import { cleanupNode } from '../env/node-cleanup.js';
import { podMemory, startNode, type StackNode } from '../env/node.js';
import { withHeartbeat } from '../env/processes.js';
import { managerKubeconfig } from '../env/manager-identity.js';
import { startStack, toEnv, type Stack, type StackInfo } from '../env/stack.js';
import { startManager, type RunningManager } from '../helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../helpers/provider.js';
import { changeQueueFlags } from '../helpers/change-queue.js';
import { changeEventValues, enableChangeEvents, writeProviderToken, type ChangeEvents } from './change-events.js';
import { SANDBOX } from './vault-commands.js';

const ROTATION_SECONDS = SANDBOX.rotationSeconds;
const env = {
  RESOURCE_GROUP: 'AzureArcTest',
  KEYVAULT_NAME: SANDBOX.vault,
  KEYVAULT_SECRET_NAME: SANDBOX.secret,
  USER_ASSIGNED_IDENTITY_NAME: 'my-identity',
  FEDERATED_IDENTITY_CREDENTIAL_NAME: 'my-credential',
  KUBERNETES_NAMESPACE: SANDBOX.namespace,
  SERVICE_ACCOUNT_NAME: 'my-service-account',
};

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let stepNo = 0;
function step(title: string): void {
  console.log(`\n${bold(`== ${++stepNo}. ${title}`)}`);
}
function show(cmd: string): void {
  console.log(`$ ${cmd}`);
}

class StepFailed extends Error {}

function kubectl(info: StackInfo, args: string[], input?: string): string {
  show(`kubectl ${args.join(' ')}`);
  const r = spawnSync('kubectl', args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, KUBECONFIG: info.k8s.kubeconfig },
  });
  if (r.error) throw new StepFailed(`kubectl could not run (${r.error.message}): install kubectl and put it on PATH`);
  if (r.status !== 0) throw new StepFailed(`kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  process.stdout.write(r.stdout);
  return r.stdout;
}

function shell(info: StackInfo, command: string): string {
  show(command);
  const out = execFileSync('bash', ['-c', command], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: info.k8s.kubeconfig },
  });
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
  return out;
}

function checkPrerequisites(): void {
  const missing: string[] = [];
  if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).error)
    missing.push('kubectl (any recent client) on PATH');
  const cached = existsSync(
    join(process.env.SSS_CACHE_DIR ?? join(process.env.HOME ?? '', '.cache', 'secret-store-sync'), 'control-plane'),
  );
  if (!cached && spawnSync('go', ['version'], { encoding: 'utf8' }).error)
    missing.push('Go >= 1.24 on PATH (to build kube-apiserver and etcd the first time)');
  if (missing.length) {
    console.error(`The sandbox needs:\n  - ${missing.join('\n  - ')}`);
    process.exit(1);
  }
}

/** The chart's release, as the README installs it; in the pod mode only. */
export const RELEASE = { name: 'secret-store-sync', namespace: 'azure-secret-store', caConfigMap: 'local-stack-ca' };

async function installChart(info: StackInfo, node: StackNode, events: ChangeEvents): Promise<void> {
  const helm = execFileSync('bash', [join(repoRoot, 'test', 'env', 'build-helm.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;
  // The stack's CA, for the provider to trust the Entra and Key Vault stand-ins.
  kubectl(info, ['create', 'namespace', RELEASE.namespace]);
  kubectl(info, [
    '-n',
    RELEASE.namespace,
    'create',
    'configmap',
    RELEASE.caConfigMap,
    `--from-file=ca.crt=${info.caFile}`,
  ]);
  const apiPort = new URL(info.k8s.server).port;
  const args = [
    'install',
    RELEASE.name,
    'deploy/chart/secret-store-sync',
    '--namespace',
    RELEASE.namespace,
    '--create-namespace',
    // What a user sets (the README's install command) …
    '--set',
    `rotationPollIntervalInSeconds=${ROTATION_SECONDS}`,
    // … and what this node and the stand-ins need: the node's network, the apiserver's and Entra's
    // addresses, the stack's CA, and the vault's host name on the node's relay to the emulator.
    '--set',
    'hostNetwork=true',
    '--set',
    'k8sServiceHost=127.0.0.1',
    '--set-string',
    `k8sServicePort=${apiPort}`,
    '--set',
    `provider.authorityHost=${info.azure.authorityHost}`,
    '--set',
    `provider.caBundleConfigMap=${RELEASE.caConfigMap}`,
    '--set',
    `hostAliases[0].ip=${node.info.vaultIp}`,
    '--set',
    `hostAliases[0].hostnames[0]=${env.KEYVAULT_NAME}.vault.azure.net`,
    // Change events: the queue, the provider's queue identity, and the storage account's host.
    ...changeEventValues(events),
    '--set',
    `hostAliases[1].ip=${node.info.queueIp}`,
    '--set',
    `hostAliases[1].hostnames[0]=${new URL(info.azure.queue.serviceUrl).hostname}`,
    '--wait',
    '--timeout',
    '3m',
  ];
  show(`helm ${args.join(' ')}`);
  const r = spawnSync(helm, [...args, '--kubeconfig', info.k8s.kubeconfig], { cwd: repoRoot, encoding: 'utf8' });
  if (r.status !== 0)
    throw new StepFailed(
      `helm install failed:\n${r.stderr}${r.stdout}\n${kubectlQuiet(info, ['-n', RELEASE.namespace, 'describe', 'pods'])}`,
    );
  process.stdout.write(r.stdout);
  kubectl(info, ['-n', RELEASE.namespace, 'get', 'pods', '-o', 'wide']);
}

/** The pod's containers' memory as the kubelet measures it (README: the pod's figures). */
async function printPodMemory(info: StackInfo, when: string): Promise<void> {
  const pod = kubectlQuiet(info, [
    '-n',
    RELEASE.namespace,
    'get',
    'pods',
    '-l',
    `app.kubernetes.io/instance=${RELEASE.name}`,
    '-o',
    'jsonpath={.items[0].metadata.name}',
  ]).trim();
  const mem = await podMemory(info, RELEASE.namespace, pod, ['manager', 'provider-azure-installer']);
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  console.log(
    `  pod memory ${when} (kubelet stats, RSS / working set): ${Object.entries(mem)
      .sort()
      .map(([c, m]) => `${c} ${mib(m.rssBytes)} / ${mib(m.workingSetBytes)}`)
      .join(', ')}`,
  );
}

function kubectlQuiet(info: StackInfo, args: string[]): string {
  const r = spawnSync('kubectl', args, { encoding: 'utf8', env: { ...process.env, KUBECONFIG: info.k8s.kubeconfig } });
  return `${r.stdout}${r.stderr}`;
}

/** The guide on a fresh stack in `dir` (what was there goes); with `once`, verified and torn down. */
export async function walkthrough({
  dir: SANDBOX_DIR,
  once,
  pod,
  kubeVersion,
}: {
  dir: string;
  /** A Kubernetes release or minor (test/env/versions.ts); the newest, or K8S_VERSION, by default. */
  kubeVersion?: string;
  once: boolean;
  pod: boolean;
}): Promise<void> {
  checkPrerequisites();
  // A node a crashed --pod run left (containers, their mounts under the folder) goes first.
  await cleanupNode(SANDBOX_DIR);
  rmSync(SANDBOX_DIR, { recursive: true, force: true });
  mkdirSync(SANDBOX_DIR, { recursive: true });
  let stack: Stack | undefined;
  let provider: RunningProviderProcess | undefined;
  let manager: RunningManager | undefined;
  let node: StackNode | undefined;
  let stopping: Promise<void> | undefined;
  // One teardown, however often asked: a Ctrl-C during it waits for it rather than cutting it short.
  // Each part says when it is done, and a line every 5 s says what it is still waiting for.
  const teardown = () =>
    (stopping ??= (async () => {
      const started = Date.now();
      console.log(`\n${bold('== Stopping the sandbox')}`);
      const parts: [string, { stop(): Promise<unknown> } | undefined][] = [
        ['the manager', manager],
        ['provider-azure', provider],
        ['the node (kubelet, containerd, the pod)', node],
        ['the stack (kube-controller-manager, kube-apiserver, etcd, the Entra ID and Key Vault stand-ins)', stack],
      ];
      for (const [name, part] of parts) {
        if (!part) continue;
        const t = Date.now();
        await withHeartbeat(
          { log: (m) => console.log(`  ${m}`), message: (s) => `still stopping ${name} (${s} s)`, everyMs: 5_000 },
          () => part.stop(),
        );
        console.log(`  stopped ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
      }
      console.log(
        `Stopped in ${((Date.now() - started) / 1000).toFixed(1)} s; nothing of the sandbox is left running.`,
      );
    })());
  process.on('SIGINT', () => void teardown().then(() => process.exit(0)));
  process.on('SIGTERM', () => void teardown().then(() => process.exit(0)));

  try {
    step(
      'Start the local stack (kube-apiserver, etcd, kube-controller-manager, Entra ID stand-in, Key Vault emulator)',
    );
    // With the pod, helm installs the CRDs from the chart, as for a user.
    stack = await startStack({
      dir: SANDBOX_DIR,
      manifests: pod ? [] : yamlFilesIn(join(repoRoot, 'deploy', 'crds')),
      log: (m) => console.log(`  ${m}`),
      handleSignals: false,
      ...(kubeVersion ? { kubeVersion } : {}),
    });
    const info = stack.info;
    Object.assign(process.env, toEnv(info), {
      NODE_EXTRA_CA_CERTS: info.caFile,
      AZURE_AUTHORITY_HOST: info.azure.authorityHost,
    });
    const azure = new AzureStack(info);
    const SERVICE_ACCOUNT_ISSUER = info.k8s.issuer;
    const AZURE_TENANT_ID = azure.tenantId;

    step('Create an Azure Key Vault and a secret with two versions');
    show(
      `az keyvault create --resource-group "${env.RESOURCE_GROUP}" --name "${env.KEYVAULT_NAME}" --enable-rbac-authorization`,
    );
    await azure.createVault(env.KEYVAULT_NAME);
    show(
      `az keyvault secret set --vault-name "${env.KEYVAULT_NAME}" --name "${env.KEYVAULT_SECRET_NAME}" --value 'Hello!'`,
    );
    await azure.setSecret(env.KEYVAULT_NAME, env.KEYVAULT_SECRET_NAME, 'Hello!');
    // As when typed by hand: Key Vault stamps versions to the second, and versions of one second
    // have no order but their ids — a later rotation's history would then be a coin toss.
    await new Promise((r) => setTimeout(r, 1_050));
    show(
      `az keyvault secret set --vault-name "${env.KEYVAULT_NAME}" --name "${env.KEYVAULT_SECRET_NAME}" --value 'Hello2'`,
    );
    await azure.setSecret(env.KEYVAULT_NAME, env.KEYVAULT_SECRET_NAME, 'Hello2');

    step('Create a user-assigned managed identity with Key Vault Reader and Key Vault Secrets User');
    show(`az identity create --name "${env.USER_ASSIGNED_IDENTITY_NAME}" --resource-group "${env.RESOURCE_GROUP}"`);
    const identity = await azure.createIdentity(env.USER_ASSIGNED_IDENTITY_NAME);
    const USER_ASSIGNED_CLIENT_ID = identity.clientId;
    console.log(`USER_ASSIGNED_CLIENT_ID=${USER_ASSIGNED_CLIENT_ID}`);
    for (const role of ['Key Vault Reader', 'Key Vault Secrets User'] as const) {
      show(
        `az role assignment create --role "${role}" --assignee "${USER_ASSIGNED_CLIENT_ID}" --scope …/providers/Microsoft.KeyVault/vaults/${env.KEYVAULT_NAME}`,
      );
      await azure.assignRole(role, USER_ASSIGNED_CLIENT_ID, env.KEYVAULT_NAME);
    }

    step('Create the Kubernetes namespace and ServiceAccount');
    kubectl(info, ['create', 'ns', env.KUBERNETES_NAMESPACE]);
    kubectl(
      info,
      ['apply', '-f', '-'],
      `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ${env.SERVICE_ACCOUNT_NAME}\n  namespace: ${env.KUBERNETES_NAMESPACE}\n`,
    );

    step('Create a federated identity credential');
    show(
      `az identity federated-credential create --name ${env.FEDERATED_IDENTITY_CREDENTIAL_NAME} --identity-name ${env.USER_ASSIGNED_IDENTITY_NAME} --issuer ${SERVICE_ACCOUNT_ISSUER} --subject system:serviceaccount:${env.KUBERNETES_NAMESPACE}:${env.SERVICE_ACCOUNT_NAME}`,
    );
    await azure.addFederatedCredential(USER_ASSIGNED_CLIENT_ID, {
      name: env.FEDERATED_IDENTITY_CREDENTIAL_NAME,
      issuer: SERVICE_ACCOUNT_ISSUER,
      subject: `system:serviceaccount:${env.KUBERNETES_NAMESPACE}:${env.SERVICE_ACCOUNT_NAME}`,
    });

    step(
      "Turn on change events: a storage queue, the vault's Event Grid subscription into it, the provider's queue identity",
    );
    const events = await enableChangeEvents({ info, azure, resourceGroup: env.RESOURCE_GROUP, show });

    if (pod) {
      step('Start a node: containerd and runc, the kubelet, the two images built and imported (no registry)');
      node = await startNode({ stack: info, log: (m) => console.log(`  ${m}`) });
      step('Install the SSE with helm: CRDs, RBAC, admission policies and the pod (manager, provider-azure-installer)');
      await installChart(info, node, events);
      await printPodMemory(info, 'at idle');
    } else {
      step("Install the SSE: CRDs, RBAC, and the pod's two containers (manager, provider-azure-installer)");
      const sockets = join(SANDBOX_DIR, 'provider');
      mkdirSync(sockets, { recursive: true });
      const managerDir = join(SANDBOX_DIR, 'manager');
      mkdirSync(managerDir, { recursive: true });
      // The pod's ServiceAccount first: the provider's queue token is one of its tokens.
      const kubeconfig = await managerKubeconfig(info, managerDir);
      const tokenFile = join(SANDBOX_DIR, 'provider-queue-token');
      await writeProviderToken(info, tokenFile);
      provider = await startProvider({
        socketDir: sockets,
        args: changeQueueFlags({ ...events, url: events.queueUrl, tokenFile }),
      });
      manager = await startManager({
        namespace: '',
        providerDir: sockets,
        dir: managerDir,
        kubeconfig,
        args: [`--rotation-poll-interval-seconds=${ROTATION_SECONDS}`, '--log-level=info'],
      });
      console.log(`  provider-azure-installer: socket ${provider.endpoint}, log ${provider.logFile}`);
      console.log(
        `  manager: as system:serviceaccount:azure-secret-store:secret-store-sync-manager, log ${manager.logFile}`,
      );
    }

    step('Create a SecretProviderClass resource (spc.yaml) and a SecretSync object (ss.yaml), and apply them');
    const guide = readFileSync(join(repoRoot, 'test', 'sandbox', 'guide.yaml.txt'), 'utf8');
    const vars: Record<string, string> = { ...env, USER_ASSIGNED_CLIENT_ID, AZURE_TENANT_ID };
    const fill = (t: string) => t.replace(/\$\{(\w+)\}/g, (_, k: string) => vars[k] ?? '');
    const [spcText, ssText] = guide.split('---8<---').map((t) => fill(t.trim()) + '\n');
    writeFileSync(join(SANDBOX_DIR, 'spc.yaml'), spcText!);
    writeFileSync(join(SANDBOX_DIR, 'ss.yaml'), ssText!);
    kubectl(info, ['apply', '-f', join(SANDBOX_DIR, 'spc.yaml')]);
    kubectl(info, ['apply', '-f', join(SANDBOX_DIR, 'ss.yaml')]);

    step('Observe secrets synchronizing to the cluster');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = spawnSync(
        'kubectl',
        [
          'get',
          'secretsync',
          'secret-sync-name',
          '-n',
          env.KUBERNETES_NAMESPACE,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ],
        { encoding: 'utf8', env: { ...process.env, KUBECONFIG: info.k8s.kubeconfig } },
      );
      if (r.stdout === 'True') break;
      if (Date.now() > deadline)
        throw new StepFailed(
          `the SecretSync did not become Ready within 60 s; manager log: ${manager?.logFile ?? `kubectl -n ${RELEASE.namespace} logs deploy/${RELEASE.name} -c manager`}`,
        );
      await new Promise((res) => setTimeout(res, 250));
    }
    kubectl(info, ['get', 'secrets', '-n', env.KUBERNETES_NAMESPACE]);
    step('View last sync status');
    kubectl(info, ['describe', 'secretsync', 'secret-sync-name', '-n', env.KUBERNETES_NAMESPACE]);
    step('View secrets values');
    const v0 = shell(
      info,
      `kubectl get secret secret-sync-name -n ${env.KUBERNETES_NAMESPACE} -o jsonpath="{.data.${env.KEYVAULT_SECRET_NAME}-data-key0}" | base64 -d`,
    );
    const v1 = shell(
      info,
      `kubectl get secret secret-sync-name -n ${env.KUBERNETES_NAMESPACE} -o jsonpath="{.data.${env.KEYVAULT_SECRET_NAME}-data-key1}" | base64 -d`,
    );
    if (v0 !== 'Hello2' || v1 !== 'Hello!') throw new StepFailed(`expected Hello2 and Hello!, got '${v0}' and '${v1}'`);

    if (pod) {
      await printPodMemory(info, 'after the walkthrough');
      step("The pod's logs, one container at a time");
      kubectl(info, ['-n', RELEASE.namespace, 'logs', `deploy/${RELEASE.name}`, '-c', 'manager', '--tail=3']);
      kubectl(info, [
        '-n',
        RELEASE.namespace,
        'logs',
        `deploy/${RELEASE.name}`,
        '-c',
        'provider-azure-installer',
        '--tail=3',
      ]);
    }
    if (once) {
      console.log(`\n${bold('The walkthrough succeeded: my-secret-data-key0 = Hello2, my-secret-data-key1 = Hello!')}`);
      await teardown();
      return;
    }
    console.log(`\n${bold('The sandbox is running.')} In another terminal:
  export KUBECONFIG=${info.k8s.kubeconfig}
  kubectl describe secretsync secret-sync-name -n ${env.KUBERNETES_NAMESPACE}
  npm run sandbox -- rotate            # add a new version of my-secret: Key Vault's event brings it to the
                                       # Secret within seconds (change events on; polling every ${ROTATION_SECONDS} s
                                       # is the backstop)
${
  pod
    ? `Logs: kubectl -n ${RELEASE.namespace} logs deploy/${RELEASE.name} -c manager   (or -c provider-azure-installer)
      node (kubelet, containerd) ${join(SANDBOX_DIR, 'node', 'logs')}`
    : `Logs: manager ${manager!.logFile}
      provider-azure-installer ${provider!.logFile}`
}
      control plane and stand-ins ${join(SANDBOX_DIR, 'logs')}
Ctrl-C stops everything.`);
    await new Promise(() => undefined);
  } catch (e) {
    console.error(`\n${bold('The sandbox failed')} at step ${stepNo}: ${(e as Error).message}`);
    await teardown();
    process.exit(1);
  }
}
