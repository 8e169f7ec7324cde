/**
 * The requirements of draft-dusseault-s2s-event-reqs, one test each, over
 * real TLS + SCRAM sessions on 127.0.0.1 and a real SQLite store.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BeepReplyError, connect, scramSha256Client, authenticate } from '../../src/index.js';
import { FLOWS_URI, FlowsError, type EventInit } from '../../src/flows/index.js';
import { NS, PASSWORD, fnua, pki, startFnaa } from './harness.js';

const ev = (i: number, extra: Partial<EventInit> = {}): EventInit => ({ type: `{${NS}}tick`, source: 'alice', data: `event ${i}`, ...extra });

async function rejects(t: import('ava').ExecutionContext, p: Promise<unknown>, code: string, reply: number): Promise<FlowsError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof FlowsError, `a FlowsError, got ${String(err)}`);
  const e = err as FlowsError;
  t.is(e.flowsCode as string, code);
  t.is(e.replyCode, reply);
  t.is(e.origin, 'remote');
  return e;
}

test('S2S loss noticed: a gap in a producer\'s sequence numbers is refused with SEQUENCE_GAP naming the expected number, and nothing of the batch is stored', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('gaps');
  t.deepEqual((await c.publish('gaps', 'p1', [{ ...ev(1), seq: 1 }, { ...ev(2), seq: 2 }])).offsets, [1, 2]);
  // seq 3 was lost on the way; 4 and 5 arrive.
  const e = await rejects(t, c.publish('gaps', 'p1', [{ ...ev(4), seq: 4 }, { ...ev(5), seq: 5 }]), 'SEQUENCE_GAP', 554);
  t.is(e.details.expected, 3);
  t.is(e.details.seq, 4);
  t.is((await c.describe('gaps')).events, 2, 'nothing of the refused batch is stored');
  t.is(await c.lastSeq('gaps', 'p1'), 2);
  // The producer resends from 3: accepted, no gap in the flow.
  t.deepEqual((await c.publish('gaps', 'p1', [{ ...ev(3), seq: 3 }, { ...ev(4), seq: 4 }, { ...ev(5), seq: 5 }])).offsets, [3, 4, 5]);
  // A gap inside one batch is noticed too.
  await rejects(t, c.publish('gaps', 'p1', [{ ...ev(6), seq: 6 }, { ...ev(8), seq: 8 }]), 'SEQUENCE_GAP', 554);
  t.is((await c.describe('gaps')).events, 5);
});

test('S2S duplicate suppressed: a retried publish is stored once and answered with the offsets it was first stored at', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('dups');
  const producer = await c.producer('dups', 'p1');
  const first = await producer.publish([ev(1), ev(2), ev(3)]);
  t.deepEqual(first.offsets, [1, 2, 3]);
  t.is(first.duplicates, 0);
  // The acknowledgement was "lost": the producer sends the same batch again.
  const again = await c.publish('dups', 'p1', first.batch);
  t.deepEqual(again.offsets, [1, 2, 3]);
  t.is(again.duplicates, 3);
  // A retry overlapping new events: the old ones suppressed, the new ones stored.
  const overlap = await c.publish('dups', 'p1', [...first.batch.slice(1), { ...ev(4), seq: 4, id: 'e4' }]);
  t.deepEqual(overlap.offsets, [2, 3, 4]);
  t.is(overlap.duplicates, 2);
  const info = await c.describe('dups');
  t.is(info.events, 4);
  // A restarted producer carries on from the server's last sequence number.
  const restarted = await c.producer('dups', 'p1');
  t.is(restarted.seq, 4);
  // Another identity's producer of the same name has its own numbering.
  await c.create('dups2', { acl: { publish: ['alice', 'bob'] } });
  const bob = await fnua(t, port, 'bob');
  t.deepEqual((await bob.publish('dups2', 'p1', [{ ...ev(1, { source: 'bob' }), seq: 1 }])).offsets, [1]);
  t.deepEqual((await c.publish('dups2', 'p1', [{ ...ev(1), seq: 1 }])).offsets, [2]);
});

test('S2S modified event noticed: a stored sequence number sent again with another event id is SEQUENCE_CONFLICT', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('conflict');
  await c.publish('conflict', 'p1', [{ ...ev(1), seq: 1, id: 'original' }]);
  const e = await rejects(t, c.publish('conflict', 'p1', [{ ...ev(1), seq: 1, id: 'other' }]), 'SEQUENCE_CONFLICT', 554);
  t.is(e.details.seq, 1);
  t.is((await c.describe('conflict')).events, 1);
});

test('S2S forged source refused: an event claiming a source host its publisher may not speak for is FORGED_SOURCE (537), nothing stored', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t, { sources: { bob: ['bob.example', 'relay.example'] } });
  const alice = await fnua(t, port, 'alice');
  await alice.create('src', { acl: { publish: ['alice', 'bob'] } });
  // alice (no sources configured) may only use her own name.
  const e = await rejects(t, alice.publish('src', 'a', [{ ...ev(1), seq: 1 }, { ...ev(2, { source: 'bob.example' }), seq: 2 }]), 'FORGED_SOURCE', 537);
  t.is(e.details.index, 1);
  t.is(e.details.field, 'source');
  const bob = await fnua(t, port, 'bob');
  await rejects(t, bob.publish('src', 'b', [{ ...ev(1, { source: 'alice' }), seq: 1 }]), 'FORGED_SOURCE', 537);
  t.is((await alice.describe('src')).events, 0, 'nothing stored');
  // Configured sources are accepted (host names compare case-insensitively).
  t.deepEqual((await bob.publish('src', 'b', [{ ...ev(1, { source: 'Relay.Example' }), seq: 1 }])).offsets, [1]);
  // The delivered event names the authenticated publisher next to the source.
  const sub = await alice.subscribe('src', { from: 'start', follow: false });
  const got = [];
  for await (const x of sub) got.push(x);
  t.is(got.length, 1);
  t.is(got[0]?.source, 'relay.example');
  t.is(got[0]?.publisher, 'bob');
});

test('S2S sink impersonation refused and TLS mandatory: without TLS the flows profile is refused with 538, without authentication with 530', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const plain = await connect({ port });
  t.teardown(() => plain.destroy());
  const e1 = await t.throwsAsync(plain.startChannel(FLOWS_URI));
  t.is((e1 as BeepReplyError).replyCode, 538);
  // Over TLS with an untrusted CA the client refuses the server (a sink impersonating ours).
  const other = await connect({ port });
  t.teardown(() => other.destroy());
  const { startTls } = await import('../../src/index.js');
  await t.throwsAsync(startTls(other, { ca: pki.otherCa, serverName: 'localhost' }));
  // Over TLS but not authenticated: 530.
  const tls = await connect({ port });
  t.teardown(() => tls.destroy());
  await startTls(tls, { ca: pki.ca, serverName: 'localhost' });
  const e2 = await t.throwsAsync(tls.startChannel(FLOWS_URI));
  t.is((e2 as BeepReplyError).replyCode, 530);
  await authenticate(tls, scramSha256Client({ username: 'alice', password: PASSWORD }));
  const ch = await tls.startChannel(FLOWS_URI);
  const reply = await ch.request(JSON.stringify({ op: 'list' }));
  t.deepEqual(JSON.parse(await reply.text()), { flows: [] });
});

test('S2S authorization to send refused: publishing without the publish permission is NOT_AUTHORIZED (537, permission "publish")', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const alice = await fnua(t, port, 'alice');
  await alice.create('acl-send', { acl: { subscribe: ['alice', 'bob'] } });
  const bob = await fnua(t, port, 'bob');
  const e = await rejects(t, bob.publish('acl-send', 'b', [{ ...ev(1, { source: 'bob' }), seq: 1 }]), 'NOT_AUTHORIZED', 537);
  t.is(e.details.permission, 'publish');
  t.is((await alice.describe('acl-send')).events, 0);
  // Nor may bob create flows when creators are restricted.
  const { port: p2 } = await startFnaa(t, { creators: ['alice'] });
  const bob2 = await fnua(t, p2, 'bob');
  const e2 = await rejects(t, bob2.create('mine'), 'NOT_AUTHORIZED', 537);
  t.is(e2.details.permission, 'create');
});

test('S2S authorization to subscribe refused: subscribing (or acknowledging) without the subscribe permission is NOT_AUTHORIZED (537, permission "subscribe"); delete needs admin', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const alice = await fnua(t, port, 'alice');
  await alice.create('acl-sub', { acl: { publish: ['alice', 'carol'] } });
  await alice.publish('acl-sub', 'a', [{ ...ev(1), seq: 1 }]);
  const carol = await fnua(t, port, 'carol');
  const e = await rejects(t, carol.subscribe('acl-sub', { from: 'start' }), 'NOT_AUTHORIZED', 537);
  t.is(e.details.permission, 'subscribe');
  await rejects(t, carol.ack('acl-sub', 'c', 1), 'NOT_AUTHORIZED', 537);
  const d = await rejects(t, carol.delete('acl-sub'), 'NOT_AUTHORIZED', 537);
  t.is(d.details.permission, 'admin');
  // bob holds nothing: the flow is not even listed for him.
  const bob = await fnua(t, port, 'bob');
  t.deepEqual(await bob.list(), []);
  await rejects(t, bob.describe('acl-sub'), 'NOT_AUTHORIZED', 537);
  t.deepEqual((await carol.list()).map((f) => f.name), ['acl-sub']);
});

test('S2S type filter: a subscription gets only the types (or namespaces) it asked for, and its position moves past the others', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('types');
  const other = 'urn:example:other';
  const p = await c.producer('types', 'p');
  const kinds = [`{${NS}}created`, `{${NS}}deleted`, `{${other}}created`, `{${NS}}updated`];
  await p.publish(Array.from({ length: 40 }, (_, i) => ev(i, { type: kinds[i % 4] as string })));
  const exact = await c.subscribe('types', { from: 'start', follow: false, types: [`{${NS}}created`, `{${other}}created`] });
  const got1 = [];
  for await (const e of exact) got1.push(e);
  t.is(got1.length, 20);
  t.true(got1.every((e) => e.type.endsWith('}created')));
  t.is(exact.position, 41, 'the position is past every event examined');
  const ns = await c.subscribe('types', { from: 'start', follow: false, types: [`{${other}}*`] });
  const got2 = [];
  for await (const e of ns) got2.push(e);
  t.is(got2.length, 10);
  t.true(got2.every((e) => e.type === `{${other}}created`));
  // A malformed filter is a clear error.
  await rejects(t, c.subscribe('types', { types: ['created'] }), 'BAD_REQUEST', 501);
});

test('S2S Unicode event names and payloads: names in any script (NFC-normalized), text payloads with a language tag, binary payloads byte for byte', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('unicode');
  const ns = 'urn:example:événements';
  const decomposed = 'cre\u0301é'; // "créé" with a combining accent, then a precomposed one
  const binary = new Uint8Array([0, 255, 0xc3, 0x28, 10, 13, 0]);
  const p = await c.producer('unicode', 'p');
  await p.publish([
    ev(1, { type: `{${ns}}${decomposed}`, data: 'Réunion déplacée à 15 h — 会議 🎉', lang: 'fr-CA', contentType: 'text/plain; charset=utf-8' }),
    ev(2, { type: `{${ns}}会議`, data: binary, contentType: 'application/octet-stream' }),
    ev(3, { type: `{${NS}}plain`, data: 'x' }),
  ]);
  // Filter with the precomposed form: matches the decomposed name stored as NFC.
  const sub = await c.subscribe('unicode', { from: 'start', follow: false, types: [`{${ns}}cr\u00e9\u00e9`, `{${ns}}会議`] });
  const got = [];
  for await (const e of sub) got.push(e);
  t.is(got.length, 2);
  t.is(got[0]?.type, `{${ns}}cr\u00e9\u00e9`);
  t.is(got[0]?.data, 'Réunion déplacée à 15 h — 会議 🎉');
  t.is(got[0]?.lang, 'fr-CA');
  t.is(got[1]?.type, `{${ns}}会議`);
  t.true(got[1]?.data instanceof Uint8Array);
  t.deepEqual(Buffer.from(got[1]?.data as Uint8Array), Buffer.from(binary));
  // A lone surrogate or a bad language tag is refused, naming the event and field.
  const e1 = await rejects(t, p.publish([ev(4, { data: 'bad \ud800 text' })]), 'BAD_EVENT', 553);
  t.is(e1.details.field, 'data');
  const e2 = await rejects(t, c.publish('unicode', 'p', [{ ...ev(4, { lang: 'not a tag' }), seq: 4 }]), 'BAD_EVENT', 553);
  t.is(e2.details.field, 'lang');
  t.is(e2.details.index, 0);
});

test('S2S machine-parsable errors: every ERR is a JSON {"error": {code, reply, message}} with a stable code and the BEEP reply code', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  const ch = await c.session.startChannel(FLOWS_URI);
  const errOf = async (body: string): Promise<Record<string, unknown>> => {
    const err = await t.throwsAsync(ch.request(body, { contentType: 'application/json' }));
    t.true(err instanceof BeepReplyError);
    const doc = JSON.parse(Buffer.from((err as BeepReplyError).body as Uint8Array).toString('utf8')) as { error: Record<string, unknown> };
    t.is(typeof doc.error.message, 'string');
    return doc.error;
  };
  t.like(await errOf('{not json'), { code: 'BAD_REQUEST', reply: 500 });
  t.like(await errOf('[1,2]'), { code: 'BAD_REQUEST', reply: 500 });
  t.like(await errOf('{"op":"fly"}'), { code: 'UNKNOWN_OP', reply: 504, field: 'op' });
  t.like(await errOf('{"op":"describe","flow":"bad name!"}'), { code: 'BAD_REQUEST', reply: 501, field: 'flow' });
  t.like(await errOf('{"op":"describe","flow":"nope"}'), { code: 'FLOW_NOT_FOUND', reply: 550, flow: 'nope' });
  await c.create('errs');
  t.like(await errOf('{"op":"create","flow":"errs"}'), { code: 'FLOW_EXISTS', reply: 550 });
  t.like(await errOf(JSON.stringify({ op: 'publish', flow: 'errs', producer: 'p', events: [{ seq: 1, id: 'a', type: 'no-namespace', source: 'alice', time: new Date().toISOString(), contentType: 'text/plain', data: 'x' }] })), { code: 'BAD_EVENT', reply: 553, index: 0, field: 'type' });
  t.like(await errOf('{"op":"ack","flow":"errs","consumer":"c","offset":99}'), { code: 'BAD_REQUEST', reply: 501, field: 'offset' });
  t.like(await errOf('{"op":"subscribe","flow":"errs","from":"yesterday"}'), { code: 'BAD_REQUEST', reply: 501, field: 'from' });
  // The channel still works after all of them.
  const ok = await ch.request('{"op":"describe","flow":"errs"}');
  t.is((JSON.parse(await ok.text()) as { flow: { name: string } }).flow.name, 'errs');
});

test('S2S authorization to route to a given user: ROUTE_NOT_AUTHORIZED (537) for an event routed to a user its publisher may not route to; a routed event reaches that user and the admins only', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t, { routes: { bob: ['carol'] }, sources: { bob: ['*'] } });
  const alice = await fnua(t, port, 'alice');
  await alice.create('routed', { acl: { publish: ['alice', 'bob'], subscribe: ['alice', 'bob', 'carol'] } });
  const bob = await fnua(t, port, 'bob');
  // bob may route to carol (configured) and to himself, not to alice.
  const e = await rejects(t, bob.publish('routed', 'b', [{ ...ev(1, { to: 'carol' }), seq: 1 }, { ...ev(2, { to: 'alice' }), seq: 2 }]), 'ROUTE_NOT_AUTHORIZED', 537);
  t.is(e.details.index, 1);
  t.is(e.details.field, 'to');
  t.is(e.details.to, 'alice');
  t.is((await alice.describe('routed')).events, 0, 'nothing of the refused batch is stored');
  // alice has no routes configured: only to herself.
  await rejects(t, alice.publish('routed', 'a', [{ ...ev(1, { to: 'bob' }), seq: 1 }]), 'ROUTE_NOT_AUTHORIZED', 537);
  t.deepEqual((await bob.publish('routed', 'b', [{ ...ev(1, { to: 'carol' }), seq: 1 }, { ...ev(2, { to: 'bob' }), seq: 2 }, { ...ev(3), seq: 3 }])).offsets, [1, 2, 3]);
  const carol = await fnua(t, port, 'carol');
  const seen = async (c: typeof alice): Promise<string[]> => {
    const sub = await c.subscribe('routed', { from: 'start', follow: false });
    const out: string[] = [];
    for await (const x of sub) out.push(`${x.offset}:${x.to ?? '-'}`);
    return out;
  };
  t.deepEqual(await seen(carol), ['1:carol', '3:-'], 'carol gets what is routed to her and unrouted events');
  t.deepEqual(await seen(bob), ['2:bob', '3:-']);
  t.deepEqual(await seen(alice), ['1:carol', '2:bob', '3:-'], 'an admin of the flow sees every event');
});

test('retention per flow: created with maxBytes, the flow keeps the newest events within the limit; describe shows the limit and the first offset kept', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  const info = await c.create('bounded', { retention: { maxBytes: 4096, maxAgeSeconds: 86_400 } });
  t.deepEqual(info.retention, { maxBytes: 4096, maxAgeSeconds: 86_400 });
  const p = await c.producer('bounded', 'p');
  for (let i = 0; i < 10; i++) await p.publish(Array.from({ length: 10 }, () => ev(i, { data: 'x'.repeat(200) })));
  const d = await c.describe('bounded');
  t.is(d.nextOffset, 101);
  t.true(d.firstOffset > 1 && d.events * 200 <= 4096, `first ${d.firstOffset}, ${d.events} events kept`);
  const sub = await c.subscribe('bounded', { from: 'start', follow: false });
  t.is(sub.from, d.firstOffset, 'a subscription from the start begins at the first event kept');
  let n = 0;
  for await (const x of sub) if (x.offset >= d.firstOffset) n++;
  t.is(n, d.events);
  const bad = await rejects(t, c.create('bad', { retention: { maxBytes: 10 } }), 'BAD_REQUEST', 501);
  t.is(bad.details.field, 'retention.maxBytes');
});
