import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Where listening ports are picked: below the kernel's ephemeral range. A port handed out by
 * listen(0) is an ephemeral one, and between the pick and the server binding it (etcd and
 * kube-apiserver start seconds later) any outgoing connection on the machine may take it as its
 * source port — CI met "bind: address already in use" so, with several stacks running at once.
 */
const EPHEMERAL_FROM = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
})();
const FROM = 10_000;
/** Handed out by this process: not free yet to the kernel's eye, but promised to a server. */
const given = new Set<number>();

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/** A port free on 127.0.0.1 right now, outside the ephemeral range when there is room below it. */
export async function freePort(): Promise<number> {
  if (EPHEMERAL_FROM > FROM + 1_000) {
    for (let i = 0; i < 50; i++) {
      const candidate = FROM + Math.floor(Math.random() * (EPHEMERAL_FROM - FROM));
      if (given.has(candidate)) continue;
      const port = await tryListen(candidate);
      if (port) {
        given.add(port);
        return port;
      }
    }
  }
  const port = await tryListen(0);
  if (!port) throw new Error('no free port on 127.0.0.1');
  return port;
}
