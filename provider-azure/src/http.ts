// HTTP side of the provider: /healthz asks the provider's own gRPC health service over its socket
// (so it fails when the socket is gone or wedged), and /metrics serves Prometheus text.
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export function checkHealth(socket: string, timeoutMs: number): Promise<void> {
  const Client = makeGenericClientConstructor(healthService as never, 'Health');
  const client = new Client(`unix:${socket}`, credentials.createInsecure()) as unknown as {
    check(req: object, opts: object, cb: (e: Error | null, r?: { status: string }) => void): void;
    close(): void;
  };
  return new Promise<void>((resolve, reject) => {
    client.check({ service: '' }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) return reject(err);
      if (res?.status !== 'SERVING') return reject(new Error(`health status ${res?.status}`));
      resolve();
    });
  });
}

export function startHealthz(port: number, host: string, path: string, socket: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== path) {
      res.writeHead(404).end();
      return;
    }
    checkHealth(socket, 5_000).then(
      () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'),
      (e: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(e.message),
    );
  });
  return listen(server, port, host);
}

export function startMetrics(port: number, host: string, registry: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  return listen(server, port, host);
}

function listen(server: Server, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
