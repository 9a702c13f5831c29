#!/usr/bin/env node
// An example provider: serves the files described by a JSON file, re-read on every Mount.
//   file-provider --endpoint unix:///tmp/example.sock --state files.json
// files.json: { "files": { "<path>": "<utf-8 contents>" } }
// Test knobs in the same file: "fail": { "code": "NotFound", "message": "…" } answers every Mount
// with that error; "hangMs": N delays every answer by N ms.
// It accepts one SecretProviderClass parameter, `prefix` (only files under it are returned), and
// refuses any other, so that a misspelt parameter is reported rather than ignored.
// It serves change notices (proto/changes.proto): each file's Mount names a change key, and while
// someone watches, an edit of the state file names the keys of the files whose contents changed.
// It imports the kit by its package name, as a provider of your own does: copy it as a start.
import { createHash } from 'node:crypto';
import { readFileSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ProviderError,
  serve,
  type ChangeListener,
  type ChangeSource,
  type ChangeState,
  type ProviderErrorCode,
} from '@secret-store-sync/proto';

interface State {
  files: Record<string, string>;
  fail?: { code: ProviderErrorCode; message: string };
  hangMs?: number;
}

const { values } = parseArgs({ options: { endpoint: { type: 'string' }, state: { type: 'string' } } });
if (!values.endpoint || !values.state) {
  console.error('usage: file-provider --endpoint unix:///path.sock --state files.json');
  process.exit(2);
}
const stateFile = values.state;
const readState = () => JSON.parse(readFileSync(stateFile, 'utf8')) as State;
/** Short and opaque: versions and change keys are compared, never parsed (a key: 1-128 printable ASCII). */
const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

// Change notices. The state file is watched only while someone watches us: a provider whose store
// is a queue pulls it only then, so that events wait for a caller that acts on them.
const listeners = new Set<ChangeListener>();
let stopWatching: (() => void) | undefined;
let sourceState: ChangeState = { receiving: true };
const announce = (state: ChangeState) => {
  sourceState = state;
  for (const l of listeners) l.state(state);
};
const changes: ChangeSource = {
  current: () => sourceState,
  watch(listener) {
    listeners.add(listener);
    stopWatching ??= watchStateFile();
    return () => {
      listeners.delete(listener);
      if (listeners.size > 0) return;
      stopWatching?.();
      stopWatching = undefined;
    };
  },
};

function watchStateFile(): () => void {
  const filesNow = () => {
    try {
      return readState().files;
    } catch {
      return undefined; // half written: the write that completes it is another event
    }
  };
  let before = filesNow() ?? {};
  let debounce: NodeJS.Timeout | undefined;
  const compare = () => {
    const after = filesNow();
    if (!after) return;
    const paths = new Set([...Object.keys(before), ...Object.keys(after)]);
    const keys = [...paths].filter((p) => before[p] !== after[p]).map(digest);
    before = after;
    if (keys.length) for (const l of listeners) l.changed({ keys, kind: 'NewVersion' });
  };
  const failed = (e: Error) => announce({ receiving: false, reason: 'WatchFailed', message: e.message });
  try {
    // The folder, not the file: an editor's rename or a ConfigMap's symlink swap replaces the file.
    // Any event there is only a reason to compare; the comparison says what changed.
    const watcher = watch(dirname(stateFile), () => {
      clearTimeout(debounce);
      debounce = setTimeout(compare, 100);
    }).on('error', failed);
    if (!sourceState.receiving) announce({ receiving: true });
    return () => (clearTimeout(debounce), watcher.close());
  } catch (e) {
    failed(e as Error);
    return () => undefined;
  }
}

const running = await serve(
  {
    runtimeName: 'secret-store-sync-file-provider',
    runtimeVersion: '0.1.0',
    changes,
    async mount(req, ctx) {
      const unknown = Object.keys(req.attributes).filter((k) => k !== 'prefix' && !k.startsWith('csi.storage.k8s.io/'));
      if (unknown.length)
        throw new ProviderError(
          'InvalidArgument',
          `unknown parameter(s): ${unknown.join(', ')} (this provider takes only 'prefix')`,
        );
      const state = readState();
      if (state.hangMs) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, state.hangMs);
          ctx.signal.addEventListener('abort', () => (clearTimeout(t), resolve()));
        });
      }
      if (ctx.signal.aborted) throw new ProviderError('DeadlineExceeded', 'the caller went away');
      if (state.fail) throw new ProviderError(state.fail.code, state.fail.message, 'ExampleFailure');
      const prefix = req.attributes.prefix ?? '';
      const chosen = Object.entries(state.files).filter(([path]) => path.startsWith(prefix));
      // Echo the parameter names the caller sent (never values: they hold tokens).
      const seen = Object.keys(req.attributes).sort().join(',');
      return {
        files: chosen.map(([path, contents]) => ({ path, contents })),
        objectVersions: [
          ...chosen.map(([path, contents]) => ({ id: `file/${path}`, version: digest(contents) })),
          { id: 'attributes', version: seen },
        ],
        // Sent as the x-provider-change-keys trailer: the key a notice names when this file changes.
        changeKeys: Object.fromEntries(chosen.map(([path]) => [`file/${path}`, digest(path)])),
      };
    },
  },
  { endpoint: values.endpoint, shutdownGraceMs: 2_000 },
);
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => void running.stop().then(() => process.exit(0)));
