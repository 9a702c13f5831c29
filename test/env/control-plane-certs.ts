// The control plane's certificates and keys, issued by the stack's CA and written as the files the
// binaries read: the apiserver's serving certificate, the client certificates of the admin, of the
// apiserver towards kubelets and of the stack's one node, and the service-account signing key.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ca } from './pki.js';
import { signingKey } from './pki.js';

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export interface ControlPlaneCerts {
  caFile: string;
  apiserver: CertFiles;
  /** The stack's admin (group system:masters), with its PEM for the readiness probes. */
  admin: CertFiles & { tls: { ca: string; cert: string; key: string } };
  kubeletClient: CertFiles;
  /** The one node test/env/node.ts may run (user system:node:<nodeName>). */
  node: CertFiles;
  serviceAccount: { pubFile: string; keyFile: string };
}

export function writeControlPlaneCerts(pkiDir: string, ca: Ca, nodeName: string): ControlPlaneCerts {
  mkdirSync(pkiDir, { recursive: true });
  const file = (name: string, content: string) => {
    const p = join(pkiDir, name);
    writeFileSync(p, content, { mode: 0o600 });
    return p;
  };
  const pair = (name: string, pem: { cert: string; key: string }): CertFiles => ({
    certFile: file(`${name}.crt`, pem.cert),
    keyFile: file(`${name}.key`, pem.key),
  });
  const apiserver = ca.issue({
    commonName: 'kube-apiserver',
    dnsNames: ['localhost', 'kubernetes.default.svc'],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  const admin = ca.issue({ commonName: 'stack-admin', organization: 'system:masters', usage: 'client' });
  const kubeletClient = ca.issue({
    commonName: 'kube-apiserver-kubelet-client',
    organization: 'system:masters',
    usage: 'client',
  });
  const node = ca.issue({ commonName: `system:node:${nodeName}`, organization: 'system:nodes', usage: 'client' });
  const sa = signingKey();
  return {
    caFile: file('ca.crt', ca.cert),
    apiserver: pair('apiserver', apiserver),
    admin: { ...pair('admin', admin), tls: { ca: ca.cert, cert: admin.cert, key: admin.key } },
    kubeletClient: pair('kubelet-client', kubeletClient),
    node: pair('node', node),
    serviceAccount: { pubFile: file('sa.pub', sa.pub), keyFile: file('sa.key', sa.key) },
  };
}
