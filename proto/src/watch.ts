// `provider-kit watch`: prints a provider's change notices (changes.proto) as the manager receives
// them, one line per event, for an operator asking "does the provider see my changes?".
import { status } from '@grpc/grpc-js';
import { ProviderClient, type ProviderCallError } from './client.js';
import { statusName } from './errors.js';
import type { ChangeState } from './changes.js';

export interface WatchCommandOptions {
  endpoint: string;
  /** Aborting it ends the watch (exit 0). */
  signal: AbortSignal;
  write: (line: string) => void;
}

/** What the provider sent, made safe for a terminal: printable ASCII, bounded. */
const printable = (s: string, max: number) => s.slice(0, max).replace(/[^\x20-\x7e]/g, '?');

const stateLine = (s: ChangeState) =>
  s.receiving
    ? 'state receiving'
    : `state not receiving ${printable(s.reason ?? '-', 64)}${s.message ? `: ${printable(s.message, 200)}` : ''}`;

/**
 * Watches until `signal` aborts (0) or the stream ends or fails (1: the line says why, and a
 * provider without the service is "not served (callers poll)").
 */
export async function watchCommand(opts: WatchCommandOptions): Promise<number> {
  const client = new ProviderClient(opts.endpoint);
  const line = (text: string) => opts.write(`${new Date().toISOString()} ${text}`);
  try {
    await client.watchChanges({
      signal: opts.signal,
      onState: (s) => line(stateLine(s)),
      // Keys are printable ASCII already (the client drops others).
      onChanged: (n) => line(`changed ${printable(n.kind || '-', 64)} ${n.keys.join(' ')}`),
    });
    if (opts.signal.aborted) return 0;
    line('the provider ended the stream');
    return 1;
  } catch (e) {
    const err = e as ProviderCallError;
    if (err.code === status.UNIMPLEMENTED) line('change notices: not served (callers poll)');
    else line(`the stream failed: ${statusName(err.code)}: ${printable(err.details ?? '', 200)}`);
    return 1;
  } finally {
    client.close();
  }
}
