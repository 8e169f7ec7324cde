/**
 * flow:// URIs resolved through a real DNS server on 127.0.0.1 (SRV for the
 * FNAA, TXT for parameters), then a real TLS + SCRAM connection to the FNAA
 * it names: fallback to the next SRV target, the TXT prefix, the TLS name
 * checked against the namespace, and malformed URIs and TXT refused.
 */
import test from 'ava';
import { scramSha256Client } from '../../src/index.js';
import { createResolver, DiscoveryError } from '../../src/discovery/index.js';
import { connectFlowUri, parseFlowUri, resolveFlowUri, FlowsError, FLOWS_URI } from '../../src/flows/index.js';
import { startTestDns } from '../helpers/dns-server.js';
import { freePort as closedPort } from '../helpers/ports.js';
import { NS, PASSWORD, fnua, pki, startFnaa } from './harness.js';


test('parseFlowUri: NAME.NAMESPACE, NAMESPACE/NAME, HOST:PORT/NAME; malformed URIs are BAD_REQUEST (field uri)', (t) => {
  t.deepEqual(parseFlowUri('flow://orders.shop.example.com'), { flow: 'orders', namespace: 'shop.example.com' });
  t.deepEqual(parseFlowUri('flow://Shop.Example/orders.eu_1'), { flow: 'orders.eu_1', namespace: 'shop.example' });
  t.deepEqual(parseFlowUri('flow://127.0.0.1:7000/orders'), { flow: 'orders', namespace: '127.0.0.1', port: 7000 });
  for (const bad of ['http://orders.shop.example', 'flow://orders', 'flow://shop.example/-bad-', 'flow://u:p@orders.shop.example', 'flow://orders.shop.example?x=1', 'flow://h:7000', 'not a uri']) {
    const e = t.throws(() => parseFlowUri(bad), { instanceOf: FlowsError }, bad);
    t.is(e?.flowsCode, 'BAD_REQUEST');
    t.is(e?.details.field, 'uri');
  }
});

test('flow://NAME.NAMESPACE: SRV finds the FNAA (a dead first target is skipped), TXT prefix names the flow there, events flow', async (t) => {
  const fnaa = await startFnaa(t);
  const dead = await closedPort();
  const dns = await startTestDns({
    '_fnaa._tcp.shop.example': {
      srv: [
        { priority: 1, weight: 0, port: dead, target: 'localhost' },
        { priority: 2, weight: 0, port: fnaa.port, target: 'localhost' },
      ],
      txt: [['txtvers=1', `profile=${FLOWS_URI}`, 'prefix=shop-']],
    },
  });
  t.teardown(() => dns.close());
  const admin = await fnua(t, fnaa.port);
  await admin.create('shop-orders');
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const conn = await connectFlowUri('flow://orders.shop.example', {
    resolver, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: 'alice', password: PASSWORD }),
  });
  t.teardown(() => conn.client.close());
  t.is(conn.flow, 'shop-orders', 'the TXT prefix is prepended');
  t.is(conn.target.port, fnaa.port, 'the dead priority-1 target was skipped for the next');
  t.true(dns.queries.includes('SRV _fnaa._tcp.shop.example') && dns.queries.includes('TXT _fnaa._tcp.shop.example'));
  const r = await conn.client.publish(conn.flow, 'p', [{ seq: 1, type: `{${NS}}t`, source: 'alice', data: 'via DNS' }]);
  t.deepEqual(r.offsets, [1]);
  t.is((await admin.describe('shop-orders')).events, 1);
});

test('the TLS name checked is the namespace by default: DNS pointing at a server without a certificate for it fails', async (t) => {
  const fnaa = await startFnaa(t);
  const dns = await startTestDns({ '_fnaa._tcp.shop.example': { srv: [{ priority: 0, weight: 0, port: fnaa.port, target: 'localhost' }] } });
  t.teardown(() => dns.close());
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const err = await t.throwsAsync(connectFlowUri('flow://orders.shop.example', { resolver, tls: { ca: pki.ca }, sasl: scramSha256Client({ username: 'alice', password: PASSWORD }) }));
  t.truthy(err, 'refused');
  t.regex(String(err?.message), /altname|certificate|Hostname|TLS|tls/i);
});

test('unusable DNS answers: no SRV is DiscoveryError NOT_FOUND; wrong txtvers, profile or prefix is BAD_REQUEST', async (t) => {
  const dns = await startTestDns({
    '_fnaa._tcp.v2.example': { srv: [{ priority: 0, weight: 0, port: 1, target: 'localhost' }], txt: [['txtvers=2']] },
    '_fnaa._tcp.other.example': { srv: [{ priority: 0, weight: 0, port: 1, target: 'localhost' }], txt: [['profile=http://example.com/not-flows']] },
    '_fnaa._tcp.prefix.example': { srv: [{ priority: 0, weight: 0, port: 1, target: 'localhost' }], txt: [['prefix=-']] },
  });
  t.teardown(() => dns.close());
  const resolver = createResolver({ servers: [dns.server], timeout: 1000, tries: 1 });
  const nf = await t.throwsAsync(resolveFlowUri('flow://x.missing.example', { resolver }), { instanceOf: DiscoveryError });
  t.is(nf?.discoveryCode, 'NOT_FOUND');
  for (const ns of ['v2.example', 'other.example', 'prefix.example']) {
    const e = await t.throwsAsync(resolveFlowUri(`flow://x.${ns}`, { resolver }), { instanceOf: FlowsError }, ns);
    t.is(e?.flowsCode, 'BAD_REQUEST');
  }
  const direct = await resolveFlowUri('flow://127.0.0.1:7/orders', { resolver });
  t.deepEqual(direct.targets, [{ host: '127.0.0.1', port: 7, priority: 0, weight: 0 }]);
});
