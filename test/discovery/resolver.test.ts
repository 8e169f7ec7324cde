/**
 * The discovery resolver against a real DNS server on 127.0.0.1 serving a
 * test zone: SRV order (RFC 2782), TXT parameters (RFC 6763 §6), NXDOMAIN,
 * NODATA, SERVFAIL, a silent server (timeout), bad names; and the pure
 * ordering function under fast-check.
 */
import test from 'ava';
import { createSocket } from 'node:dgram';
import fc from 'fast-check';
import { createResolver, DiscoveryError, orderSrv, parseTxt, checkDnsName, type SrvTarget } from '../../src/discovery/index.js';
import { BeepError } from '../../src/errors.js';
import { startTestDns, type TestDns } from '../helpers/dns-server.js';

let dns: TestDns;
test.before(async () => {
  dns = await startTestDns({
    '_fnaa._tcp.shop.example': {
      srv: [
        { priority: 20, weight: 0, port: 7003, target: 'backup.shop.example' },
        { priority: 10, weight: 60, port: 7001, target: 'a.shop.example' },
        { priority: 10, weight: 40, port: 7002, target: 'b.shop.example' },
      ],
      txt: [['txtvers=1', 'TLS=required', 'Profile=http://beepstream.org/beep/FLOWS', 'tls=ignored-second', 'flag']],
    },
    '_fnaa._tcp.notxt.example': { srv: [{ priority: 0, weight: 0, port: 7010, target: 'only.notxt.example' }] },
    '_fnaa._tcp.gone.example': { srv: [{ priority: 0, weight: 0, port: 0, target: '.' }] },
    'hostonly.example': { a: ['127.0.0.1'] },
  }, ['broken.example', '_fnaa._tcp.broken.example']);
});
test.after.always(() => dns.close());

test('discover: SRV targets by priority then weight, TXT parameters at the same name, from the configured server', async (t) => {
  const r = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const before = dns.queries.length;
  // random() = 0 picks the first non-zero-weight candidate's slot: a (weight 60) before b.
  const d = await r.discover('fnaa', 'tcp', 'shop.example', () => 0.99);
  t.is(d.name, '_fnaa._tcp.shop.example');
  t.deepEqual(d.targets.map((x) => `${x.host}:${x.port}`), ['b.shop.example:7002', 'a.shop.example:7001', 'backup.shop.example:7003']);
  t.is(d.params.txtvers, '1');
  t.is(d.params.tls, 'required', 'keys are case-insensitive and the first occurrence wins');
  t.is(d.params.profile, 'http://beepstream.org/beep/FLOWS');
  t.is(d.params.flag, true, 'a key without = is a boolean attribute');
  t.true(dns.queries.slice(before).includes('SRV _fnaa._tcp.shop.example'), 'the SRV query reached our server');
  t.true(dns.queries.slice(before).includes('TXT _fnaa._tcp.shop.example'), 'the TXT query reached our server');
  const low = await r.discover('fnaa', 'tcp', 'shop.example', () => 0);
  t.is(low.targets[0]?.host, 'a.shop.example', 'random 0 falls in the first weight slot');
});

test('a name without TXT records has empty parameters (NODATA is not an error for TXT)', async (t) => {
  const r = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const d = await r.discover('fnaa', 'tcp', 'notxt.example');
  t.deepEqual(d.targets, [{ host: 'only.notxt.example', port: 7010, priority: 0, weight: 0 }]);
  t.deepEqual({ ...d.params }, {});
});

test('NXDOMAIN and NODATA are NOT_FOUND with the DNS code; SERVFAIL is LOOKUP_FAILED; all BeepErrors', async (t) => {
  const r = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const nx = await t.throwsAsync(r.srv('_fnaa._tcp.nowhere.example'), { instanceOf: DiscoveryError });
  t.is(nx?.discoveryCode, 'NOT_FOUND');
  t.is(nx?.dnsCode, 'ENOTFOUND');
  t.is(nx?.dnsName, '_fnaa._tcp.nowhere.example');
  t.true(nx instanceof BeepError);
  const nodata = await t.throwsAsync(r.srv('hostonly.example'), { instanceOf: DiscoveryError });
  t.is(nodata?.discoveryCode, 'NOT_FOUND');
  t.is(nodata?.dnsCode, 'ENODATA');
  const sf = await t.throwsAsync(r.srv('_fnaa._tcp.broken.example'), { instanceOf: DiscoveryError });
  t.is(sf?.discoveryCode, 'LOOKUP_FAILED');
  t.is(sf?.dnsCode, 'ESERVFAIL');
});

test('an SRV target of "." means the service is not available: BAD_RECORD', async (t) => {
  const r = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const e = await t.throwsAsync(r.discover('fnaa', 'tcp', 'gone.example'), { instanceOf: DiscoveryError });
  t.is(e?.discoveryCode, 'BAD_RECORD');
});

test('a DNS server that never answers: LOOKUP_FAILED (ETIMEOUT) after the configured timeout and tries', async (t) => {
  const silent = createSocket('udp4');
  let received = 0;
  silent.on('message', () => received++);
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const r = createResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeout: 200, tries: 2 });
  const e = await t.throwsAsync(r.srv('_fnaa._tcp.shop.example'), { instanceOf: DiscoveryError });
  t.is(e?.discoveryCode, 'LOOKUP_FAILED');
  t.is(e?.dnsCode, 'ETIMEOUT');
  t.true(received >= 2, `the query was sent and retried (${received} datagrams)`);
});

test('bad names and bad server addresses are refused before any lookup (BAD_NAME)', async (t) => {
  const r = createResolver({ servers: [dns.server] });
  const before = dns.queries.length;
  for (const bad of ['', 'a..b', '-x.example', 'x'.repeat(64) + '.example', 'sp ace.example', 'ünï.example']) {
    const e = await t.throwsAsync(r.srv(bad), { instanceOf: DiscoveryError }, JSON.stringify(bad));
    t.is(e?.discoveryCode, 'BAD_NAME');
  }
  t.is(dns.queries.length, before, 'nothing was asked');
  for (const bad of ['localhost', '1.2.3.4:99999', '[::1', 'example.com:53']) {
    t.throws(() => createResolver({ servers: [bad] }), { instanceOf: DiscoveryError }, bad);
  }
  t.notThrows(() => createResolver({ servers: ['127.0.0.1', '127.0.0.1:5353', '[::1]:5353', '::1'] }));
  t.is(checkDnsName('Shop.Example.'), 'Shop.Example');
});

const srvArb = fc.array(fc.record({ host: fc.constantFrom('a', 'b', 'c', 'd', 'e'), port: fc.integer({ min: 1, max: 65535 }), priority: fc.integer({ min: 0, max: 3 }), weight: fc.integer({ min: 0, max: 100 }) }), { maxLength: 12 });

test('orderSrv is a permutation sorted by priority, for any records and any random source (fast-check)', (t) => {
  fc.assert(fc.property(srvArb, fc.array(fc.double({ min: 0, max: 0.9999999, noNaN: true }), { minLength: 1, maxLength: 20 }), (records, rs) => {
    let i = 0;
    const out = orderSrv(records as SrvTarget[], () => rs[i++ % rs.length] as number);
    const key = (x: SrvTarget): string => `${x.host}/${x.port}/${x.priority}/${x.weight}`;
    if (out.length !== records.length) return false;
    if ([...out.map(key)].sort().join() !== [...records.map(key)].sort().join()) return false;
    for (let k = 1; k < out.length; k++) if ((out[k] as SrvTarget).priority < (out[k - 1] as SrvTarget).priority) return false;
    return true;
  }));
  t.pass();
});

test('orderSrv: within a priority, a target is picked first in proportion to its weight (RFC 2782)', (t) => {
  const recs: SrvTarget[] = [
    { host: 'heavy', port: 1, priority: 0, weight: 90 },
    { host: 'light', port: 2, priority: 0, weight: 10 },
  ];
  // Walk random over [0,1) evenly: the first pick should be heavy about 90 % of the time.
  let heavy = 0;
  const N = 1000;
  for (let k = 0; k < N; k++) if (orderSrv(recs, () => k / N)[0]?.host === 'heavy') heavy++;
  t.true(heavy > 850 && heavy < 950, `heavy first ${heavy} of ${N}`);
});

test('parseTxt: keys lower-cased, first wins, empty keys ignored, values keep their case and = signs', (t) => {
  const p = parseTxt(['A=1', 'a=2', '=x', '', 'b=x=y', 'C']);
  t.deepEqual({ ...p }, { a: '1', b: 'x=y', c: true });
});
