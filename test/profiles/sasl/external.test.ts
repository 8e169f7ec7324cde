import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SaslReasons, externalClient, externalServer, subjectCommonName } from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'beepstream-external-'));
const certs = new Map<string, X509Certificate>();

/** A self-signed certificate made by openssl with this subject. */
function makeCert(name: string, subject: string): X509Certificate {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', crt, '-days', '1', '-subj', subject,
  ], { stdio: 'pipe', timeout: 20_000 });
  return new X509Certificate(readFileSync(crt));
}

test.before(() => {
  try {
    certs.set('alice', makeCert('alice', '/C=US/O=Example, Inc./CN=alice'));
    certs.set('nocn', makeCert('nocn', '/O=Example'));
    certs.set('twocn', makeCert('twocn', '/CN=one/CN=two'));
    certs.set('comma', makeCert('comma', '/CN=smith\\, john'));
  } catch (err) {
    throw new Error(`openssl is needed to make test certificates: ${String(err)}`);
  }
});

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const cert = (name: string): X509Certificate => {
  const c = certs.get(name);
  if (c === undefined) throw new Error(`no cert ${name}`);
  return c;
};

test('subjectCommonName reads one CN, refuses none or several', (t) => {
  t.is(subjectCommonName(cert('alice')), 'alice');
  t.is(subjectCommonName(cert('comma')), 'smith, john');
  t.is(subjectCommonName(cert('nocn')), undefined);
  t.is(subjectCommonName(cert('twocn')), undefined);
});

test('EXTERNAL: the identity is the certificate CN (X509Certificate or DER)', async (t) => {
  for (const peer of [cert('alice'), cert('alice').raw]) {
    const ctx = { tls: true, tlsPeerCertificate: peer };
    const f = externalServer();
    t.true(f.available(ctx));
    const r = await runExchange(externalClient().create(ctx), f.create(ctx));
    t.is(r.server.status, 'success');
    if (r.server.status === 'success') t.deepEqual(r.server.identity, { authcid: 'alice', mechanism: 'EXTERNAL' });
  }
});

test('EXTERNAL: without a certificate, 535', async (t) => {
  const f = externalServer();
  t.false(f.available({ tls: true }));
  assertFailure(t, await f.create({ tls: true }).step(Buffer.alloc(0)), 535, SaslReasons.NO_CERTIFICATE);
  assertFailure(t, await f.create({ tls: true, tlsPeerCertificate: Buffer.from('not DER') }).step(Buffer.alloc(0)), 535, SaslReasons.NO_CERTIFICATE);
  assertFailure(t, await f.create({ tls: true, tlsPeerCertificate: cert('nocn') }).step(Buffer.alloc(0)), 535, SaslReasons.NO_CERTIFICATE);
  assertFailure(t, await f.create({ tls: true, tlsPeerCertificate: cert('twocn') }).step(Buffer.alloc(0)), 535, SaslReasons.NO_CERTIFICATE);
});

test('EXTERNAL: a requested authzid must match or be authorized', async (t) => {
  const ctx = { tls: true, tlsPeerCertificate: cert('alice') };
  const same = await runExchange(externalClient({ authzid: 'alice' }).create(ctx), externalServer().create(ctx));
  t.is(same.server.status, 'success');
  const other = await runExchange(externalClient({ authzid: 'root' }).create(ctx), externalServer().create(ctx));
  assertFailure(t, other.server, 535, SaslReasons.NOT_AUTHORIZED);
  const allowed = await runExchange(
    externalClient({ authzid: 'root' }).create(ctx),
    externalServer({ authorize: (c, z) => c === 'alice' && z === 'root' }).create(ctx),
  );
  t.is(allowed.server.status, 'success');
  if (allowed.server.status === 'success') t.deepEqual(allowed.server.identity, { authcid: 'alice', authzid: 'root', mechanism: 'EXTERNAL' });
});

test('EXTERNAL: a mapping callback decides the identity', async (t) => {
  const ctx = { tls: true, tlsPeerCertificate: cert('nocn') };
  const byFingerprint = externalServer({ mapIdentity: (c) => (c.fingerprint256 === cert('nocn').fingerprint256 ? 'service-x' : undefined) });
  const r = await byFingerprint.create(ctx).step(Buffer.alloc(0));
  t.is(r.status, 'success');
  if (r.status === 'success') t.is(r.identity.authcid, 'service-x');
  assertFailure(t, await byFingerprint.create({ tls: true, tlsPeerCertificate: cert('alice') }).step(Buffer.alloc(0)), 535, SaslReasons.NO_CERTIFICATE);
  assertFailure(t, await externalServer({ mapIdentity: () => Promise.reject(new Error('x')) }).create(ctx).step(Buffer.alloc(0)), 454);
});

test('EXTERNAL: absent initial response gets an empty challenge; bad authzid bytes are malformed', async (t) => {
  const ctx = { tls: true, tlsPeerCertificate: cert('alice') };
  const r = await runExchange(externalClient().create(ctx), externalServer().create(ctx), { initial: false });
  t.deepEqual(r.transcript, ['S: ', 'C: ']);
  t.is(r.server.status, 'success');
  assertFailure(t, await externalServer().create(ctx).step(Buffer.from([0xff])), 535, SaslReasons.MALFORMED);
  assertFailure(t, await externalServer().create(ctx).step(Buffer.from('a\0b')), 535, SaslReasons.MALFORMED);
});
