// /healthz (the process answers), /readyz (the caches are filled), /metrics (Prometheus).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export function startHttp(port: number, host: string, routes: Record<string, () => Promise<{ status: number; body: string; type?: string }>>): Promise<Server> {
  const server = createServer((req, res) => {
    const route = routes[req.url?.split('?')[0] ?? ''];
    if (!route) return void res.writeHead(404).end();
    route().then(
      (r) => res.writeHead(r.status, { 'content-type': r.type ?? 'text/plain' }).end(r.body),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export function metricsRoute(registry: Registry) {
  return async () => ({ status: 200, body: await registry.metrics(), type: registry.contentType });
}
