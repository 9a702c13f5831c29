#!/usr/bin/env node
// An example provider: serves the files described by a JSON file, re-read on every Mount.
//   file-provider --endpoint unix:///tmp/example.sock --state files.json
// files.json: { "files": { "<path>": "<utf-8 contents>" } }
// Test knobs in the same file: "fail": { "code": "NotFound", "message": "…" } answers every Mount
// with that error; "hangMs": N delays every answer by N ms.
// It accepts one SecretProviderClass parameter, `prefix` (only files under it are returned), and
// refuses any other, so that a misspelt parameter is reported rather than ignored.
// It imports the kit by its package name, as a provider of your own does: copy it as a start.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ProviderError, serve, type ProviderErrorCode } from '@secret-store-sync/proto';

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

const running = await serve(
  {
    runtimeName: 'secret-store-sync-file-provider',
    runtimeVersion: '0.1.0',
    async mount(req, ctx) {
      const unknown = Object.keys(req.attributes).filter((k) => k !== 'prefix' && !k.startsWith('csi.storage.k8s.io/'));
      if (unknown.length)
        throw new ProviderError(
          'InvalidArgument',
          `unknown parameter(s): ${unknown.join(', ')} (this provider takes only 'prefix')`,
        );
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
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
          ...chosen.map(([path, contents]) => ({ id: `file/${path}`, version: String(contents.length) })),
          { id: 'attributes', version: seen },
        ],
      };
    },
  },
  { endpoint: values.endpoint, shutdownGraceMs: 2_000 },
);
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => void running.stop().then(() => process.exit(0)));
