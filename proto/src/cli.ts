#!/usr/bin/env node
// provider-kit conformance (--socket unix:///path.sock | --command "<cmd … {endpoint} …>") --fixture fixture.json
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { report, runConformance, type Fixture } from './conformance.js';

const USAGE = `usage: provider-kit conformance (--socket unix:///path.sock | --command "node my-provider.js --endpoint {endpoint}") --fixture fixture.json [--timeout-ms 10000] [--max-message-bytes 4194304]`;

const [sub, ...rest] = process.argv.slice(2);
if (sub !== 'conformance') {
  console.error(USAGE);
  process.exit(2);
}
const { values } = parseArgs({
  args: rest,
  options: {
    socket: { type: 'string' },
    command: { type: 'string' },
    fixture: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'max-message-bytes': { type: 'string' },
  },
});
if (!values.fixture || !values.socket === !values.command) {
  console.error(USAGE);
  process.exit(2);
}
const fixture = JSON.parse(readFileSync(values.fixture, 'utf8')) as Fixture;
const results = await runConformance({
  fixture,
  ...(values.socket ? { endpoint: values.socket } : { command: values.command!.split(' ').filter(Boolean) }),
  ...(values['timeout-ms'] ? { timeoutMs: Number(values['timeout-ms']) } : {}),
  ...(values['max-message-bytes'] ? { maxMessageBytes: Number(values['max-message-bytes']) } : {}),
});
process.exit(report(results) ? 0 : 1);
