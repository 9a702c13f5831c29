// /healthz (the process answers), /readyz (the caches are filled), /metrics (Prometheus).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Answer {
  status: number;
  body: string | Buffer;
  type?: string;
}

/** A fixed answer, built once: probes answer from state, never from work done per request. */
export function fixedAnswer(status: number, text: string): Answer {
  return Object.freeze({ status, body: Buffer.from(text), type: 'text/plain' });
}

export function startHttp(
  port: number,
  host: string,
  routes: Record<string, () => Answer | Promise<Answer>>,
): Promise<Server> {
  const server = createServer((req, res) => {
    const route = routes[req.url?.split('?')[0] ?? ''];
    if (!route) return void res.writeHead(404).end();
    const send = (r: Answer) => res.writeHead(r.status, { 'content-type': r.type ?? 'text/plain' }).end(r.body);
    const answer = route();
    if (answer instanceof Promise) answer.then(send, (e: Error) => res.writeHead(500).end(e.message));
    else send(answer);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export function metricsRoute(registry: Registry) {
  return async (): Promise<Answer> => ({ status: 200, body: await registry.metrics(), type: registry.contentType });
}
