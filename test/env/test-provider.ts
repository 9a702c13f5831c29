// A provider for the manager's own tests: serves files from a JSON file it re-reads on every Mount,
// so a test can change values, make it fail with a given gRPC code, or make it hang.
// Usage: tsx test/env/test-provider.ts <unix:///…/name.sock> <state.json>
// state.json: { "files": { "<path>": "<utf-8 contents>" }, "fail"?: { "code": "NotFound", "message": "…" }, "hangMs"?: 5000 }
import { ProviderError, serve, type ProviderErrorCode } from '@secret-store-sync/proto';
import { readFileSync } from 'node:fs';

interface State {
  files: Record<string, string>;
  fail?: { code: ProviderErrorCode; message: string };
  hangMs?: number;
}

const [endpoint, stateFile] = process.argv.slice(2);
if (!endpoint || !stateFile) throw new Error('usage: test-provider <endpoint> <state.json>');

const running = await serve(
  {
    runtimeName: 'secret-store-sync-test-provider',
    runtimeVersion: '0.0.0',
    async mount(req, ctx) {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
      if (state.hangMs) await new Promise((r) => setTimeout(r, state.hangMs).unref());
      if (ctx.signal.aborted) throw new ProviderError('DeadlineExceeded', 'cancelled');
      if (state.fail) throw new ProviderError(state.fail.code, state.fail.message, 'TestFailure');
      // Echo what the manager sent (minus the token), so tests can check the request.
      const seen = Object.keys(req.attributes).sort().join(',');
      return {
        files: Object.entries(state.files).map(([path, contents]) => ({ path, contents })),
        objectVersions: [...Object.keys(state.files).map((p) => ({ id: `file/${p}`, version: String(state.files[p]!.length) })), { id: 'attributes', version: seen }],
      };
    },
  },
  { endpoint, shutdownGraceMs: 2_000 },
);
process.on('SIGTERM', () => void running.stop().then(() => process.exit(0)));
process.on('SIGINT', () => void running.stop().then(() => process.exit(0)));
