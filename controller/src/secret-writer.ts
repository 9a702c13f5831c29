// Writes the Secret named after a SecretSync without ever clobbering one it does not own — with
// only create and patch on Secrets (no get), so ownership is checked by the apiserver, atomically:
//   - a first write is a create; if the name is taken (409) it falls through to the update;
//   - an update is a JSON patch whose `test` operations require the manager's label, the owner
//     annotation holding this SecretSync's UID, the ownerReference to it, and the same type,
//     before any `add` replaces data, labels and annotations. A failed test changes nothing;
//     dry-run patches with one test each then tell which mark is missing, for the status reason.
import { errorCode } from '@secret-store-sync/proto';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { FORBIDDEN_SECRET_TYPES } from './config.js';
import { MANAGED_LABEL, OWNER_ANNOTATION, SYNC_GROUP, SYNC_VERSION, type SecretSync } from './api.js';
import type { Metrics } from './metrics.js';
import { FAILURES } from './messages.js';
import { SyncError } from './reasons.js';
import { apiMessage } from './tokens.js';

const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const FIELD_MANAGER = 'secret-store-sync-manager';

export interface DesiredSecret {
  type: string;
  data: Record<string, Buffer>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

type Op = { op: 'test' | 'add' | 'replace'; path: string; value: unknown };
const pointer = (...parts: string[]) => '/' + parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export class SecretWriter {
  /** The Secret's resourceVersion after this manager last wrote or checked it, by SecretSync UID. */
  private readonly lastSeen = new Map<string, string>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Writes the Secret. `create` tries a create first; `update` patches one known to exist;
   * `reassert` patches only the data of an unchanged sync (a rotation): a Secret deleted or edited
   * by hand is repaired, while labels and annotations others added since the last change are kept.
   * An identical patch changes nothing (the apiserver keeps the resourceVersion), and then this
   * returns 'unchanged' — known when the manager saw the Secret before (not right after a restart).
   */
  async write(
    ss: SecretSync,
    desired: DesiredSecret,
    mode: 'create' | 'update' | 'reassert',
  ): Promise<'created' | 'updated' | 'unchanged'> {
    const { name, namespace } = ss.metadata;
    // Config refuses these types at start; checked again here so no other path can write one.
    if (FORBIDDEN_SECRET_TYPES.includes(desired.type))
      throw new SyncError(FAILURES.typeNeverWritten({ type: desired.type }));
    const body = this.body(ss, desired);
    if (mode === 'create' && (await this.tryCreate(ss, body))) return 'created';
    const ops = this.ownershipTests(ss, desired).concat([
      ...(mode === 'reassert'
        ? []
        : ([
            { op: 'add', path: '/metadata/labels', value: body.metadata!.labels },
            { op: 'add', path: '/metadata/annotations', value: body.metadata!.annotations },
          ] as Op[])),
      { op: 'add', path: '/data', value: body.data },
    ]);
    try {
      const patched = await this.core.patchNamespacedSecret(
        { name, namespace, body: ops, fieldManager: FIELD_MANAGER },
        JSON_PATCH,
      );
      this.metrics.secretWrites.inc({ operation: 'patch', result: 'ok' });
      const before = this.lastSeen.get(ss.metadata.uid);
      const after = patched.metadata?.resourceVersion ?? '';
      this.lastSeen.set(ss.metadata.uid, after);
      return mode === 'reassert' && (before === undefined || before === after) ? 'unchanged' : 'updated';
    } catch (e) {
      this.metrics.secretWrites.inc({ operation: 'patch', result: 'error' });
      const code = errorCode(e);
      if (code === 404) {
        // Deleted behind our back (or never made): create it again.
        if (await this.tryCreate(ss, body)) return 'created';
        throw new SyncError(FAILURES.secretVanished({ name }));
      }
      if (code === 422 || code === 409 || code === 400) {
        const broken = await this.whichTestFails(ss, desired);
        if (broken) throw broken;
      }
      throw new SyncError(FAILURES.writeFailed({ name, detail: apiMessage(e) }), { cause: e });
    }
  }

  private body(ss: SecretSync, desired: DesiredSecret): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: ss.metadata.name,
        namespace: ss.metadata.namespace,
        labels: { ...desired.labels, [MANAGED_LABEL]: '' },
        annotations: { ...desired.annotations, [OWNER_ANNOTATION]: ss.metadata.uid },
        ownerReferences: [
          {
            apiVersion: `${SYNC_GROUP}/${SYNC_VERSION}`,
            kind: 'SecretSync',
            name: ss.metadata.name,
            uid: ss.metadata.uid,
            controller: true,
          },
        ],
      },
      type: desired.type,
      data: Object.fromEntries(Object.entries(desired.data).map(([k, v]) => [k, v.toString('base64')])),
    };
  }

  private ownershipTests(ss: SecretSync, desired: DesiredSecret): Op[] {
    return [
      { op: 'test', path: pointer('metadata', 'labels', MANAGED_LABEL), value: '' },
      { op: 'test', path: pointer('metadata', 'annotations', OWNER_ANNOTATION), value: ss.metadata.uid },
      { op: 'test', path: pointer('metadata', 'ownerReferences', '0', 'uid'), value: ss.metadata.uid },
      { op: 'test', path: '/type', value: desired.type },
    ];
  }

  /** Forgets a deleted SecretSync. */
  forget(uid: string): void {
    this.lastSeen.delete(uid);
  }

  /** Creates; false when the name is taken. */
  private async tryCreate(ss: SecretSync, body: V1Secret): Promise<boolean> {
    try {
      const created = await this.core.createNamespacedSecret({
        namespace: ss.metadata.namespace,
        body,
        fieldManager: FIELD_MANAGER,
      });
      this.metrics.secretWrites.inc({ operation: 'create', result: 'ok' });
      this.lastSeen.set(ss.metadata.uid, created.metadata?.resourceVersion ?? '');
      return true;
    } catch (e) {
      this.metrics.secretWrites.inc({ operation: 'create', result: 'error' });
      if (errorCode(e) === 409) return false;
      throw new SyncError(FAILURES.createFailed({ name: body.metadata!.name!, detail: apiMessage(e) }), { cause: e });
    }
  }

  /** Dry-run patches, one test each, to name the mark that is missing. */
  private async whichTestFails(ss: SecretSync, desired: DesiredSecret): Promise<SyncError | undefined> {
    const [label, annotation, owner, type] = this.ownershipTests(ss, desired);
    const name = ss.metadata.name;
    const fails = async (op: Op) => {
      try {
        await this.core.patchNamespacedSecret(
          { name, namespace: ss.metadata.namespace, body: [op], dryRun: 'All', fieldManager: FIELD_MANAGER },
          JSON_PATCH,
        );
        return false;
      } catch (e) {
        // A failed `test` is a 422 with a generic message; an admission denial names its policy.
        return errorCode(e) === 422 && !/admission/i.test(apiMessage(e));
      }
    };
    if (await fails(label!)) return new SyncError(FAILURES.notLabelled({ name }));
    if (await fails(annotation!)) return new SyncError(FAILURES.notAnnotated({ name, uid: ss.metadata.uid }));
    if (await fails(owner!)) return new SyncError(FAILURES.ownerChanged({ name }));
    if (await fails(type!)) return new SyncError(FAILURES.typeChanged({ name, type: desired.type }));
    return undefined;
  }
}
