// Measuring tools for the benchmark: percentiles, a bounded-concurrency runner, Prometheus text
// sums, process memory and CPU from /proc, watches that time when objects reach a state, and the
// Azure side of stack B.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AzureStack } from '../test/env/azure/client.js';
import type { Stack } from '../test/env/stack.js';
import { azureParameters, objectsYaml, secretProviderClass } from '../test/helpers/fixtures.js';
import type { Kube } from '../test/helpers/kube.js';
import { startManager, type RunningManager } from '../test/helpers/manager.js';
import { startProvider, type RunningProviderProcess } from '../test/helpers/provider.js';

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export const round = (x: number, digits = 1) => Number(x.toFixed(digits));

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Sum of a metric's samples in Prometheus text, optionally only those whose labels match. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** V8's heap (committed, used) and external memory in MB, from a Node process's prom-client metrics. */
export function v8HeapMb(text: string): { total: number; used: number; external: number } {
  const mb = (name: string) => round(metricSum(text, name) / 2 ** 20);
  return {
    total: mb('nodejs_heap_size_total_bytes'),
    used: mb('nodejs_heap_size_used_bytes'),
    external: mb('nodejs_external_memory_bytes'),
  };
}

/** The same, as the memory benches record it (heapTotal, heapUsed, external). */
export function heapFields(text: string): { heapTotal: number; heapUsed: number; external: number } {
  const h = v8HeapMb(text);
  return { heapTotal: h.total, heapUsed: h.used, external: h.external };
}

/** Resident memory now and at its peak (VmHWM), in MB, and CPU seconds used, of a process. */
export function processStats(pid: number): { rssMb: number; peakRssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  // /proc/<pid>/stat: utime and stime are fields 14 and 15 (after the parenthesised command).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMb: round(kb('VmRSS') / 1024), peakRssMb: round(kb('VmHWM') / 1024), cpuSeconds: ticks / 100 };
}

type Obj = {
  metadata?: { name?: string; namespace?: string };
  status?: { conditions?: { type: string; status: string; reason?: string }[] };
};

/**
 * Watches a collection and records, per namespace/name, the first moment `done(obj)` held. Waiters
 * resolve when a given object, or a given count of objects, got there. Restarts a watch that ends.
 */
export class Arrivals {
  readonly at = new Map<string, number>();
  private readonly waiters: { key?: string; count?: number; resolve: () => void }[] = [];
  private abort?: { abort(): void };
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly path: string,
    private readonly done: (o: Obj) => boolean,
    private readonly labelSelector?: string,
  ) {}

  async start(): Promise<void> {
    const watch = new Watch(this.kc);
    let ready!: () => void;
    const connected = new Promise<void>((r) => (ready = r));
    const run = async () => {
      this.abort = await watch.watch(
        this.path,
        { allowWatchBookmarks: false, ...(this.labelSelector ? { labelSelector: this.labelSelector } : {}) },
        (_type: string, o: Obj) => this.seen(o),
        () => {
          if (!this.stopped) setTimeout(() => void run(), 100);
        },
      );
      ready();
    };
    await run();
    await connected;
  }

  private seen(o: Obj): void {
    const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (this.at.has(key) || !this.done(o)) return;
    this.at.set(key, performance.now());
    for (const w of [...this.waiters]) {
      if ((w.key && w.key === key) || (w.count !== undefined && this.at.size >= w.count)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Resolves when `key` (namespace/name) has arrived. */
  arrival(key: string): Promise<number> {
    if (this.at.has(key)) return Promise.resolve(this.at.get(key)!);
    return new Promise((resolve) => this.waiters.push({ key, resolve: () => resolve(this.at.get(key)!) }));
  }

  /** Resolves when `count` objects have arrived. */
  count(count: number): Promise<void> {
    if (this.at.size >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

export const readyWith = (reasons: string[]) => (o: Obj) =>
  !!o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && reasons.includes(c.reason ?? ''));

export function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The node flags an image starts its process with: the arguments between `node` and the script in
 * the Dockerfile's ENTRYPOINT, so that the bench runs the processes as they ship.
 */
export function shippedNodeArgs(dockerfile: string): string[] {
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(dockerfile, 'utf8'))?.[1];
  if (!line) throw new Error(`no ENTRYPOINT in ${dockerfile}`);
  const argv = JSON.parse(line) as string[];
  return argv.slice(
    1,
    argv.findIndex((a) => a.endsWith('.js')),
  );
}

/** One class of stack B: the objects its Mounts read, with the identity of the namespace it lives in. */
export interface AzureClass {
  namespace: string;
  clientId: string;
  /** The `objects` parameter: `s<j>-a` with a version history of 2, and `s<j>-b`. */
  objects: string;
}

/**
 * The Azure side of the full bench's stack B, also what bench/provider-memory.ts measures: per
 * namespace an identity federated with its `app` service account and allowed to read the vault;
 * classes round-robin over the namespaces, each with three secret versions in the vault (two of
 * `s<j>-a`, one of `s<j>-b`). The namespaces and service accounts must exist.
 */
export async function seedAzureClasses(
  azure: AzureStack,
  vault: string,
  issuer: string,
  namespaces: string[],
  classes: number,
  identityPrefix: string,
): Promise<AzureClass[]> {
  const out: AzureClass[] = [];
  for (const [k, ns] of namespaces.entries()) {
    const id = await azure.createIdentity(`${identityPrefix}-${ns}`);
    await azure.addFederatedCredential(id.clientId, {
      name: 'fic',
      issuer,
      subject: `system:serviceaccount:${ns}:app`,
    });
    await azure.assignRole('Key Vault Secrets User', id.clientId, vault);
    for (let j = k; j < classes; j += namespaces.length) {
      await azure.setSecret(vault, `s${j}-a`, `a-${j}-old`);
      await azure.setSecret(vault, `s${j}-a`, `a-${j}-new`);
      await azure.setSecret(vault, `s${j}-b`, `b-${j}`);
      out[j] = {
        namespace: ns,
        clientId: id.clientId,
        objects: objectsYaml([
          { objectName: `s${j}-a`, objectType: 'secret', objectVersionHistory: 2 },
          { objectName: `s${j}-b`, objectType: 'secret' },
        ]),
      };
    }
  }
  return out;
}

/** What a scenario on a stack of its own gets from bench/run.ts (`--events`, `--burst`). */
export interface OwnStackScenario<S> {
  stack: Stack;
  sizes: S;
  say: (m: string) => void;
  /** Node flags of each process as it ships, and the run's change-hash key. */
  start: { managerNode: string[]; providerNode: string[]; hashKey: Buffer };
}

/** A SecretProviderClass of provider-azure for one Key Vault secret, read as `clientId`. */
export async function oneSecretClass(
  k: Kube,
  azure: AzureStack,
  o: { name: string; namespace: string; vault: string; clientId: string; objectName: string },
): Promise<void> {
  const parameters = azureParameters({
    keyvaultName: o.vault,
    tenantID: azure.tenantId,
    clientID: o.clientId,
    objects: [{ objectName: o.objectName, objectType: 'secret' }],
  });
  const spc = secretProviderClass({ name: o.name, provider: 'azure', parameters });
  await k.objects.create({ ...spc, metadata: { ...spc.metadata, namespace: o.namespace } });
}

/** provider-azure, then a manager on its socket under `dir`, both with the run's node flags. */
export async function startPair(o: {
  dir: string;
  start: OwnStackScenario<unknown>['start'];
  namespace: string;
  providerArgs: string[];
  managerArgs: string[];
}): Promise<{ provider: RunningProviderProcess; manager: RunningManager; stop(): Promise<void> }> {
  const providerDir = join(o.dir, 'providers');
  mkdirSync(providerDir, { recursive: true });
  const provider = await startProvider({
    socketDir: providerDir,
    nodeArgs: o.start.providerNode,
    args: o.providerArgs,
  });
  const manager = await startManager({
    namespace: o.namespace,
    providerDir,
    dir: o.dir,
    hashKey: o.start.hashKey,
    nodeArgs: o.start.managerNode,
    args: o.managerArgs,
  }).catch(async (e: unknown) => {
    await provider.stop();
    throw e;
  });
  return {
    provider,
    manager,
    stop: async () => {
      await manager.stop();
      await provider.stop();
    },
  };
}
