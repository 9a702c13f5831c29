// Small helpers shared by the stand-ins' HTTP handlers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'node:https';

export async function readBody(req: IncomingMessage, limit = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'RequestTooLarge', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function httpsGetJson(url: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...(ca ? { ca } : {}), timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/** Optional fault injection for resilience tests: the next `count` matching requests fail. */
export interface Fault {
  pathPattern: string;
  status: number;
  retryAfterSeconds?: number;
  delayMs?: number;
  count: number;
  /** Only requests of this client (Entra: the token request's client_id), so a test's fault touches no other test on the shared stack. */
  clientId?: string;
}

export class Faults {
  private faults: Fault[] = [];
  add(f: Fault): void {
    this.faults.push(f);
  }
  clear(): void {
    this.faults = [];
  }
  take(path: string, clientId?: string): Fault | undefined {
    const f = this.faults.find(
      (x) =>
        x.count > 0 && new RegExp(x.pathPattern).test(path) && (x.clientId === undefined || x.clientId === clientId),
    );
    if (f) f.count--;
    return f;
  }
}
