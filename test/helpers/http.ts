// One HTTP GET on a connection of its own, as the kubelet probes (no keep-alive pool): a refused
// connection rejects with its code (ECONNREFUSED), which is how a test sees where a port is bound.
import { request } from 'node:http';

export function getOnce(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

/** The same URL on another host (the port and path kept). */
export const onHost = (url: string, host: string) => Object.assign(new URL(url), { hostname: host }).toString();
