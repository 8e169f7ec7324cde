/**
 * Finding a DECADE server through DNS: `decade://DOMAIN` resolved with a real
 * DNS server on 127.0.0.1 (SRV `_decade._tcp.DOMAIN`, TXT at the same name),
 * then a real connection to the server it names — a dead first target is
 * skipped; names without records, unusable records and a TXT txtvers other
 * than 1 are refused with their codes; over TLS the certificate must match
 * DOMAIN (DNS lowers nothing); the CLI takes decade://DOMAIN with --dns-server.
 */
import test from 'ava';
import { createServer as createTcpServer } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createResolver, DiscoveryError, type DiscoveryErrorCode } from '../../src/discovery/index.js';
import { connectDecade, DecadeError, nameOf, parseDecadeAddress, resolveDecadeServer } from '../../src/decade/index.js';
import type { TestPki } from '../helpers/certs.js';
import { startTestDns } from '../helpers/dns-server.js';
import { freePort as closedPort } from '../helpers/ports.js';
import { run } from '../helpers/cli.js';
import { octets, startDecade, tempDir } from '../helpers/decade.js';


test('parseDecadeAddress: HOST:PORT, [IPv6]:PORT and decade://DOMAIN; anything else BAD_REQUEST', (t) => {
  t.deepEqual(parseDecadeAddress('127.0.0.1:10290'), { host: '127.0.0.1', port: 10290 });
  t.deepEqual(parseDecadeAddress('[::1]:7'), { host: '::1', port: 7 });
  t.deepEqual(parseDecadeAddress('storage.example:443'), { host: 'storage.example', port: 443 });
  t.deepEqual(parseDecadeAddress('decade://Storage.Example'), { domain: 'storage.example' });
  for (const bad of ['storage.example', 'decade://', 'decade://a b', 'http://x:1', 'h:0', 'h:70000', '']) {
    const e = t.throws(() => parseDecadeAddress(bad), { instanceOf: DecadeError }, bad);
    t.is(e?.decadeCode, 'BAD_REQUEST');
  }
});

test('decade://DOMAIN: SRV finds the server (a dead first target is skipped), TXT is read, objects go and come back', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const dead = await closedPort();
  const dns = await startTestDns({
    '_decade._tcp.storage.example': {
      srv: [
        { priority: 1, weight: 0, port: dead, target: 'localhost' },
        { priority: 2, weight: 0, port: h.port, target: 'localhost' },
      ],
      txt: [['txtvers=1']],
    },
  });
  t.teardown(() => dns.close());
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const conn = await connectDecade('decade://storage.example', { resolver });
  t.teardown(() => conn.client.close());
  t.deepEqual(conn.target, { host: 'localhost', port: h.port }, 'the dead priority-1 target was skipped for the next');
  t.is(conn.resolved?.params.txtvers, '1');
  t.true(dns.queries.includes('SRV _decade._tcp.storage.example') && dns.queries.includes('TXT _decade._tcp.storage.example'));
  const token = await h.token();
  const data = octets(50_000, 4);
  t.true((await conn.client.put(token, data)).fresh);
  t.true((await conn.client.get(token, nameOf(data).name)).equals(data));
  // HOST:PORT needs no DNS.
  const before = dns.queries.length;
  const direct = await connectDecade(`127.0.0.1:${h.port}`, { resolver });
  t.teardown(() => direct.client.close());
  t.is(dns.queries.length, before);
});

test('discovery refusals: no record NOT_FOUND, SRV "." BAD_RECORD, a DNS failure LOOKUP_FAILED, TXT txtvers=2 BAD_REQUEST; every server unreachable: the last failure', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const dead = await closedPort();
  const dns = await startTestDns({
    '_decade._tcp.none.example': { srv: [{ priority: 0, weight: 0, port: 0, target: '' }] },
    '_decade._tcp.v2.example': { srv: [{ priority: 0, weight: 0, port: 1, target: 'localhost' }], txt: [['txtvers=2']] },
    '_decade._tcp.dead.example': { srv: [{ priority: 0, weight: 0, port: dead, target: 'localhost' }] },
  }, ['_decade._tcp.broken.example']);
  t.teardown(() => dns.close());
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const codes: [string, DiscoveryErrorCode][] = [['nowhere.example', 'NOT_FOUND'], ['none.example', 'BAD_RECORD'], ['broken.example', 'LOOKUP_FAILED']];
  for (const [domain, code] of codes) {
    const e = await t.throwsAsync(resolveDecadeServer(domain, { resolver }), { instanceOf: DiscoveryError }, domain);
    t.is(e?.discoveryCode, code, domain);
  }
  const v2 = await t.throwsAsync(resolveDecadeServer('v2.example', { resolver }), { instanceOf: DecadeError });
  t.is(v2?.decadeCode, 'BAD_REQUEST');
  const e = await t.throwsAsync(connectDecade('decade://dead.example', { resolver, timeout: 5000 }));
  t.regex((e as Error).message, /ECONNREFUSED|cannot connect/);
});

test('decade CLI: put and get with decade://DOMAIN and --dns-server', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const dir = await tempDir(t);
  const dns = await startTestDns({ '_decade._tcp.storage.example': { srv: [{ priority: 0, weight: 0, port: h.port, target: 'localhost' }] } });
  t.teardown(() => dns.close());
  const tok = join(dir, 'tok');
  await writeFile(tok, await h.token(), { mode: 0o600 });
  const file = join(dir, 'data.bin');
  const data = octets(200_000, 6);
  await writeFile(file, data);
  const put = await run(['decade', 'put', 'decade://storage.example', file, '--token', `file:${tok}`, '--dns-server', dns.server, '--json']);
  t.is(put.code, 0, put.stderr);
  const back = join(dir, 'back.bin');
  const get = await run(['decade', 'get', 'decade://storage.example', nameOf(data).name, '--out', back, '--token', `file:${tok}`, '--dns-server', dns.server]);
  t.is(get.code, 0, get.stderr);
  t.true((await readFile(back)).equals(data));
  t.true(dns.queries.includes('SRV _decade._tcp.storage.example'));
  const bad = await run(['decade', 'stat', 'decade://storage.example', '--token', `file:${tok}`, '--dns-server', 'not-an-ip']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--dns-server: /);
});

test('decade://DOMAIN over TLS: the certificate must match DOMAIN, not the SRV target; a TLS refusal does not move on to the next target; tls.serverName overrides', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { tls: true });
  const pki = h.pki as TestPki;
  const port = h.port;
  // A second target that counts the connections it gets: none, if the TLS refusal stops the search.
  let dialled = 0;
  const counter = createTcpServer((s) => {
    dialled++;
    s.destroy();
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => counter.close(() => r())));
  const dns = await startTestDns({
    '_decade._tcp.storage.example': {
      srv: [
        { priority: 1, weight: 0, port, target: 'localhost' },
        { priority: 2, weight: 0, port: (counter.address() as { port: number }).port, target: 'localhost' },
      ],
    },
  });
  t.teardown(() => dns.close());
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  // The certificate names localhost and 127.0.0.1, not storage.example: refused, whatever DNS says.
  await t.throwsAsync(connectDecade('decade://storage.example', { resolver, tls: { ca: pki.ca } }), { message: /storage\.example|altnames|certificate/i });
  t.is(dialled, 0, 'the next target was not tried after a TLS refusal');
  const ok = await connectDecade('decade://storage.example', { resolver, tls: { ca: pki.ca, serverName: 'localhost' } });
  t.teardown(() => ok.client.close());
  t.true(ok.client.session.core.security.tls);
  const token = await h.token({ operations: ['put', 'get'] });
  const data = octets(10_000, 2);
  await ok.client.put(token, data);
  t.true((await ok.client.get(token, nameOf(data).name)).equals(data));
});
