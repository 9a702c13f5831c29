// The node's network: pods use the host network (no CNI plugin or kube-proxy runs), the node's
// address is the host's own, and pods reach the Key Vault emulator and the storage account's queue
// front on port 443 through relays.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

/** The host's first non-loopback IPv4: the kubelet refuses a loopback node IP. */
export function hostIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error(
    'the node needs a non-loopback IPv4 address on this host (the kubelet refuses 127.0.0.1 as its node IP), and none was found',
  );
}

/**
 * A CNI configuration loaded so the runtime reports its network ready; never run, as every pod here
 * uses the host network (a pod that does not fails at sandbox creation: there is no plugin binary).
 */
export function writeHostNetworkCni(dir: string): void {
  writeFileSync(
    join(dir, 'cni', 'conf', '10-host-network-only.conflist'),
    JSON.stringify({ cniVersion: '1.0.0', name: 'host-network-only', plugins: [{ type: 'loopback' }] }),
  );
}

export interface Relay {
  ip: string;
  close(): Promise<void>;
}

/**
 * A TCP relay on <loopback address>:443 to the Key Vault emulator (or, with `service: 'queue'`, the
 * queue front): pods resolve the vault's (the storage account's) host name to that address
 * (hostAliases) and reach it on the real port, through TLS end to end.
 */
export async function startRelay(stackDir: string, target: string, service: 'vault' | 'queue'): Promise<Relay> {
  const [host, port] = target.split(':');
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  // 127.0.0.0/8 is all loopback: an address of the stack's own, so two stacks never share 443.
  const h = createHash('sha256')
    .update(service === 'vault' ? stackDir : `${stackDir} ${service}`)
    .digest();
  for (let i = 0; i < 8; i++) {
    const ip = `127.${(h[i]! % 200) + 20}.${h[i + 1]!}.${(h[i + 2]! % 250) + 2}`;
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(443, ip, () => resolve(true));
    });
    if (ok) {
      return {
        ip,
        close: async () => {
          for (const s of sockets) s.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      };
    }
  }
  throw new Error(`no loopback address with port 443 free for the ${service} relay`);
}
