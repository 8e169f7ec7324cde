/**
 * Development certificates, generated with the `openssl` command into a
 * temporary directory: a CA, a server certificate for localhost and
 * 127.0.0.1, a client certificate, and an unrelated CA with its own client
 * certificate (to test refusals). For demos and tests only — never for
 * production, where a facility's own PKI issues certificates.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM texts and file paths of a generated development PKI. */
export interface DevPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
  otherClientCert: string;
  otherClientKey: string;
  paths: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey' | 'otherCa', string>;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
  } catch (err) {
    throw new Error(`generating development certificates needs the openssl command: ${(err as Error).message.split('\n')[0]}`);
  }
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

/**
 * Generate a development PKI (a few hundred milliseconds) in a new temporary
 * directory (`dir`: the caller removes it, e.g. with {@link removeDevPki});
 * if generation fails, the directory is removed before the error is thrown.
 */
export function generateDevPki(): DevPki {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-pki-'));
  try {
    return generateIn(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Remove the files of a development PKI (private keys among them). Never throws. */
export function removeDevPki(pki: Pick<DevPki, 'dir'>): void {
  try {
    rmSync(pki.dir, { recursive: true, force: true });
  } catch {
    /* already gone */
  }
}

function generateIn(dir: string): DevPki {
  makeCa(dir, 'ca');
  makeLeaf(dir, 'ca', 'server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(dir, 'ca', 'client', 'alice', null);
  makeCa(dir, 'other');
  makeLeaf(dir, 'other', 'otherclient', 'mallory', null);
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
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
}
