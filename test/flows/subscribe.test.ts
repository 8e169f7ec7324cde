/**
 * Subscriptions: where they start (start, an offset, a time, the end, the
 * acknowledged position), live delivery, ending them (unsubscribe, flow
 * deleted), and acknowledgements that never move back.
 */
import test from 'ava';
import type { EventInit, FlowEvent, Subscription } from '../../src/flows/index.js';
import { NS, fnua, startFnaa } from './harness.js';

const ev = (i: number): EventInit => ({ type: `{${NS}}n`, source: 'alice', data: String(i) });

async function take(sub: Subscription, n: number): Promise<FlowEvent[]> {
  const out: FlowEvent[] = [];
  if (n === 0) return out;
  for await (const e of sub) {
    out.push(e);
    if (out.length >= n) break;
  }
  return out;
}

test('subscribe from start, from an offset, from a time, and from the end (only events published afterwards, delivered live)', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('where');
  const p = await c.producer('where', 'p');
  await p.publish([ev(1), ev(2), ev(3)]);
  const mark = new Date().toISOString();
  // Stored times never decrease along a flow; wait (bounded) until the clock moved past the mark.
  for (let i = 0; i < 100 && new Date().toISOString() <= mark; i++) await new Promise((r) => setTimeout(r, 5));
  await p.publish([ev(4), ev(5)]);

  const fromStart = await take(await c.subscribe('where', { from: 'start', follow: false }), 99);
  t.deepEqual(fromStart.map((e) => e.offset), [1, 2, 3, 4, 5]);
  const fromOffset = await take(await c.subscribe('where', { from: { offset: 4 }, follow: false }), 99);
  t.deepEqual(fromOffset.map((e) => e.data), ['4', '5']);
  const fromTime = await c.subscribe('where', { from: { time: mark }, follow: false });
  t.true(fromTime.from <= 4 && fromTime.from >= 1);
  const timed = await take(fromTime, 99);
  t.deepEqual(timed.slice(-2).map((e) => e.data), ['4', '5'], 'events stored after the time are included');
  const beyond = await take(await c.subscribe('where', { from: { offset: 99 }, follow: false }), 99);
  t.deepEqual(beyond, []);

  const live = await c.subscribe('where', { from: 'end' });
  t.is(live.from, 6);
  const got = take(live, 2);
  await p.publish([ev(6), ev(7)]);
  t.deepEqual((await got).map((e) => e.data), ['6', '7']);
  await live.close();
  t.is(live.channel.state, 'closed');
  // The session carries on after the unsubscribe.
  t.is((await c.describe('where')).events, 7);
});

test('close() ends a live subscription that nobody reads, and deleting the flow ends the subscriptions on it', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('ending');
  const p = await c.producer('ending', 'p');
  await p.publish(Array.from({ length: 500 }, (_, i) => ev(i)));
  const unread = await c.subscribe('ending', { from: 'start', batch: 10 });
  await unread.close();
  t.is(unread.channel.state, 'closed');

  const watcher = await c.subscribe('ending', { from: 'end' });
  const ended = take(watcher, 1000);
  await c.delete('ending');
  t.deepEqual(await ended, [], 'the subscription ends (NUL) when its flow is deleted');
  t.deepEqual(await c.list(), []);
});

test('acknowledgements: a durable consumer resumes after its position, the position never moves back, and is kept per identity', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const alice = await fnua(t, port, 'alice');
  await alice.create('acks', { acl: { subscribe: ['alice', 'bob'] } });
  const p = await alice.producer('acks', 'p');
  await p.publish(Array.from({ length: 10 }, (_, i) => ev(i + 1)));
  const s1 = await alice.subscribe('acks', { from: 'acked', consumer: 'worker', follow: false });
  t.is(s1.from, 1, 'never acknowledged: from the start');
  const firstFour = await take(s1, 4);
  t.is(await s1.ack(), 4);
  await s1.close();
  t.deepEqual(firstFour.map((e) => e.offset), [1, 2, 3, 4]);
  t.is(await alice.ack('acks', 'worker', 2), 4, 'an older position does not move it back');
  const s2 = await alice.subscribe('acks', { from: 'acked', consumer: 'worker', follow: false });
  t.deepEqual((await take(s2, 99)).map((e) => e.offset), [5, 6, 7, 8, 9, 10]);
  // bob's consumer "worker" is another consumer.
  const bob = await fnua(t, port, 'bob');
  const s3 = await bob.subscribe('acks', { from: 'acked', consumer: 'worker', follow: false });
  t.is(s3.from, 1);
  await s3.close();
});

test('a subscriber that does not read holds its BEEP window: the server stops delivering at about one window, then delivers everything in order as it reads', async (t) => {
  t.timeout(120_000);
  const fnaa = await startFnaa(t);
  const { connectFlows } = await import('../../src/flows/index.js');
  const { scramSha256Client } = await import('../../src/index.js');
  const { PASSWORD, pki } = await import('./harness.js');
  const c = await fnua(t, fnaa.port);
  await c.create('paced', { acl: { subscribe: ['alice'] } });
  const p = await c.producer('paced', 'p');
  const TOTAL = 1000;
  for (let i = 0; i < TOTAL / 250; i++) await p.publish(Array.from({ length: 250 }, (_, k) => ({ ...ev(i * 250 + k), data: 'y'.repeat(1024) })));
  // A subscriber with a fixed 16 KiB receive window.
  const slow = await connectFlows({ port: fnaa.port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: 'alice', password: PASSWORD }), limits: { receiveWindow: 16384, maxReceiveWindow: 16384 } });
  t.teardown(() => slow.close());
  const sub = await slow.subscribe('paced', { from: 'start', batch: 8 });
  // Wait (bounded) until the server's delivery count stops moving.
  let last = -1;
  let still = 0;
  for (let i = 0; i < 500 && still < 10; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const d = fnaa.flows.subscriptions().find((s) => s.flow === 'paced')?.delivered ?? 0;
    still = d === last && d > 0 ? still + 1 : 0;
    last = d;
  }
  t.true(last > 0, 'something was delivered');
  t.true(last <= 64, `delivery stopped at about one window (16 KiB ≈ 16 events of 1 KiB), not at ${last} of ${TOTAL}`);
  // Reading opens the window: everything arrives, in order.
  let expected = 1;
  let wrong = 0;
  for await (const e of sub) {
    if (e.offset !== expected) wrong++;
    expected++;
    if (expected > TOTAL) break;
  }
  t.is(wrong, 0);
  t.is(expected - 1, TOTAL);
  await sub.close();
});

test('bidirectional: two flows, one subscription channel each way, each peer publishing and subscribing on one session', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const alice = await fnua(t, port, 'alice');
  const bob = await fnua(t, port, 'bob');
  await alice.create('a-to-b', { acl: { subscribe: ['bob'] } });
  await bob.create('b-to-a', { acl: { subscribe: ['alice'] } });
  const atB = await bob.subscribe('a-to-b', { from: 'start' });
  const atA = await alice.subscribe('b-to-a', { from: 'start' });
  t.not(atA.channel.number, 0);
  const gotB = take(atB, 3);
  const gotA = take(atA, 3);
  const pa = await alice.producer('a-to-b', 'a');
  const pb = await bob.producer('b-to-a', 'b');
  await Promise.all([pa.publish([ev(1), ev(2), ev(3)]), pb.publish([1, 2, 3].map((i) => ({ ...ev(i), source: 'bob' })))]);
  t.deepEqual((await gotB).map((e) => [e.publisher, e.data]), [['alice', '1'], ['alice', '2'], ['alice', '3']]);
  t.deepEqual((await gotA).map((e) => [e.publisher, e.data]), [['bob', '1'], ['bob', '2'], ['bob', '3']]);
  await Promise.all([atA.close(), atB.close()]);
});

test('subscriptions of one session woken by the same events each get their own event objects (an ANS shared on the wire is decoded once, never shared in memory)', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const c = await fnua(t, port);
  await c.create('fan');
  const subs = await Promise.all([1, 2, 3].map(() => c.subscribe('fan', { from: 'end' })));
  const got = subs.map((s) => take(s, 3));
  const p = await c.producer('fan', 'p');
  await p.publish([ev(1), { type: `{${NS}}bin`, source: 'alice', data: new Uint8Array([1, 2, 3]) }, ev(3)]);
  const [a, b, d] = (await Promise.all(got)) as [FlowEvent[], FlowEvent[], FlowEvent[]];
  t.deepEqual(a, b);
  t.deepEqual(a, d);
  // Mutating what one subscription received changes nothing for the others.
  (a[0] as FlowEvent).type = 'changed';
  (a[1]?.data as Uint8Array)[0] = 99;
  t.is((b[0] as FlowEvent).type, `{${NS}}n`);
  t.deepEqual([...((b[1] as FlowEvent).data as Uint8Array)], [1, 2, 3]);
  t.deepEqual([...((d[1] as FlowEvent).data as Uint8Array)], [1, 2, 3]);
  t.not(a[2], b[2]);
});
