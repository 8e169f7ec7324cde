/**
 * Certificates generated for the test run with the openssl command: a CA, a
 * server certificate for localhost / 127.0.0.1, a client certificate, and a
 * second, untrusted CA with its own client certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
  /** Paths of the PEM files, for CLI tests. */
  paths: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'otherCa', string>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
}

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`], dir);
}

function makeLeaf(dir: string, ca: string, name: string, cn: string, san: string | null): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, san ? `subjectAltName=${san}\n` : 'basicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', `${name}.pem`], dir);
}

let cached: TestPki | null = null;

/** Generate (once per process) the test PKI. */
export function testPki(): TestPki {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-pki-'));
  makeCa(dir, 'ca');
  makeLeaf(dir, 'ca', 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(dir, 'ca', 'client', 'alice', null);
  makeCa(dir, 'other');
  makeLeaf(dir, 'other', 'otherclient', 'mallory', null);
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  cached = {
    dir,
    ca: r('ca.pem'),
    serverCert: r('server.pem'),
    serverKey: r('server.key'),
    clientCert: r('client.pem'),
    clientKey: r('client.key'),
    otherCa: r('other.pem'),
    otherClientCert: r('otherclient.pem'),
    otherClientKey: r('otherclient.key'),
    paths: {
      ca: join(dir, 'ca.pem'),
      serverCert: join(dir, 'server.pem'),
      serverKey: join(dir, 'server.key'),
      clientCert: join(dir, 'client.pem'),
      clientKey: join(dir, 'client.key'),
      otherCa: join(dir, 'other.pem'),
    },
  };
  return cached;
}
