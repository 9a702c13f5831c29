// A TCP relay between a process and the apiserver that a test can cut without closing anything:
// `blackhole()` stops passing bytes both ways while every connection stays open — the half-dead
// kept-alive connection that no error ever reports — `cut()` closes every connection and refuses
// new ones (an unreachable apiserver), and `restore()` lets them flow again.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface Relay {
  /** host:port to put in a kubeconfig in place of the apiserver's. */
  address: string;
  blackhole(): void;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startRelay(target: { host: string; port: number }): Promise<Relay> {
  let holes = false;
  let refusing = false;
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (!holes) to.write(chunk);
    });
    from.on('close', () => to.destroy());
    from.on('error', () => to.destroy());
  };
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    blackhole: () => (holes = true),
    cut: () => {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    restore: () => {
      holes = false;
      refusing = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
