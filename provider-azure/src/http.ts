// HTTP side of the provider: /healthz answers from a self-check of the provider's own gRPC health
// service over its socket (so it fails when the socket is gone or wedged), and /metrics serves
// Prometheus text.
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { errorMessage } from '@secret-store-sync/proto';
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

interface Answer {
  status: number;
  body: Buffer;
}
const answer = (status: number, text: string): Answer => ({ status, body: Buffer.from(text) });
const OK = answer(200, 'ok');
const STALE = answer(503, 'self-check stale');
const CHECK_TIMEOUT_MS = 5_000;

/**
 * The provider's liveness, checked over its socket once per interval, never per request: each
 * check costs a gRPC connection, and /healthz is reachable by whatever may reach its port, so a
 * thousand probes a second once took the container's whole CPU limit.
 */
export class SelfCheck {
  private current: Answer = answer(503, 'not checked yet');
  private checkedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly socket: string,
    private readonly intervalMs: number,
    private readonly onCheck: (ok: boolean) => void = () => {},
  ) {}

  /** Checks once now, then every interval after each check ends (checks never overlap). */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The last check's answer; stale when no check has ended for three intervals (a stuck check is a failure too). */
  answer(now = Date.now()): Answer {
    return now - this.checkedAt > 3 * this.intervalMs + CHECK_TIMEOUT_MS ? STALE : this.current;
  }

  private async check(): Promise<void> {
    try {
      await checkHealth(this.socket, CHECK_TIMEOUT_MS);
      this.current = OK;
      this.onCheck(true);
    } catch (e) {
      this.current = answer(503, errorMessage(e));
      this.onCheck(false);
    }
    this.checkedAt = Date.now();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check().then(() => this.schedule()), this.intervalMs);
    this.timer.unref();
  }
}
export function startHealthz(port: number, host: string, path: string, health: SelfCheck): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.split('?')[0] !== path) {
      res.writeHead(404).end();
      return;
    }
    const a = health.answer();
    res.writeHead(a.status, { 'content-type': 'text/plain' }).end(a.body);
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
