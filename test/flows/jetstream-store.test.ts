/**
 * The JetStream store against a real nats-server process (JetStream, file
 * storage) on 127.0.0.1: the FlowStore contract (`store-contract.ts`), the
 * producer state and consumer positions surviving a reopen of the store, and
 * duplicate suppression equal to the embedded store's (stale producer state
 * of another FNAA, Nats-Msg-Id and the stream's duplicate window, beyond it).
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { FlowsError, openJetStreamStore, type FlowStore } from '../../src/flows/index.js';
import { acl, ev, fresh, readAll, storeContract } from './store-contract.js';
import { startNats, type NatsCluster } from '../helpers/nats.js';

let nats: NatsCluster;
const cleanups: (() => Promise<void>)[] = [];
test.before(async () => {
  nats = await startNats((fn) => cleanups.push(fn), 1);
});
test.after.always(async () => {
  for (const fn of cleanups) await fn();
});

async function open(t: import('ava').ExecutionContext): Promise<FlowStore> {
  const s = await openJetStreamStore({ servers: nats.servers, timeoutMs: 10_000 });
  t.teardown(() => s.close());
  return s;
}

storeContract('jetstream', open);

test('jetstream: a reopened store finds producer sequence numbers and consumer positions in the streams', async (t) => {
  const s1 = await open(t);
  const name = fresh('reopen');
  await s1.createFlow(name, 'x', acl);
  await s1.append(name, 'a', 'p', [ev(1), ev(2), ev(3)]);
  await s1.ack(name, 'c', 2);
  await s1.close();
  const s2 = await open(t);
  t.is(await s2.lastSeq(name, 'a', 'p'), 3);
  t.is(await s2.acked(name, 'c'), 2);
  const r = await s2.append(name, 'a', 'p', [ev(2), ev(3), ev(4)]);
  t.deepEqual(r, { offsets: [2, 3, 4], duplicates: 2 }, 'a retry after the reopen is answered from the stream');
  t.deepEqual((await readAll(s2, name)).map((e) => e.seq), [1, 2, 3, 4]);
  t.like(await s2.describe(name), { description: 'x', acl, events: 4, nextOffset: 5 });
});

test('jetstream duplicate suppression equals the embedded store\'s when another FNAA stored events of the producer (a stale producer state): a retry is a duplicate at the first offsets, a modified event SEQUENCE_CONFLICT, a gap names the real next number; nothing is stored twice', async (t) => {
  const a = await open(t);
  const b = await open(t); // a second FNAA's store on the same streams
  const name = fresh('stale');
  await a.createFlow(name, '', acl);
  t.is(await b.lastSeq(name, 'u', 'p'), 0); // b now holds the producer's state
  await a.append(name, 'u', 'p', [ev(1), ev(2), ev(3)]);
  t.is(await b.lastSeq(name, 'u', 'p'), 3, 'a producer asking where it stands gets the stream\'s answer');
  await a.append(name, 'u', 'p', [ev(4)]); // b's state is stale again: it believes 3
  const c1 = await t.throwsAsync(b.append(name, 'u', 'p', [ev(4, { id: 'modified' })]), { instanceOf: FlowsError });
  t.is(c1?.flowsCode, 'SEQUENCE_CONFLICT', 'a modified event under a stored number is noticed (Nats-Msg-Id alone would have dropped it silently)');
  await a.append(name, 'u', 'p', [ev(5)]);
  t.deepEqual(await b.append(name, 'u', 'p', [ev(5), ev(6)]), { offsets: [5, 6], duplicates: 1 });
  await a.append(name, 'u', 'p', [ev(7)]);
  const gap = await t.throwsAsync(b.append(name, 'u', 'p', [ev(9)]), { instanceOf: FlowsError });
  t.is(gap?.flowsCode, 'SEQUENCE_GAP');
  t.is(gap?.details.expected, 8);
  t.deepEqual(await b.append(name, 'u', 'p', [ev(6), ev(7), ev(8)]), { offsets: [6, 7, 8], duplicates: 2 });
  t.deepEqual((await readAll(b, name)).map((e) => [e.offset, e.seq, e.id]), [1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, n, `id-${n}`]));
});

test('jetstream: every event carries Nats-Msg-Id <producer>:<seq> and the flow\'s stream drops a second copy within its duplicate window (JetStream\'s own de-duplication)', async (t) => {
  const s = await open(t);
  const name = fresh('msgid');
  await s.createFlow(name, '', acl);
  await s.append(name, 'u', 'p', [ev(1), ev(2)]);
  const nc = await connect({ servers: nats.servers });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const stream = `FLOWS_${name}`;
  t.is((await jsm.streams.info(stream)).config.duplicate_window, 600_000 * 1_000_000, 'the default window: 10 minutes');
  const stored = await jsm.streams.getMessage(stream, { seq: 2 });
  const pt = Buffer.from('u\u0000p', 'utf8').toString('base64url');
  t.is(stored?.header?.get('Nats-Msg-Id'), `${pt}:2`);
  // The same message again (as a retried publish whose first acknowledgement was lost): JetStream keeps one.
  const again = await jetstream(nc).publish(stored?.subject as string, stored?.data as Uint8Array, { msgID: `${pt}:2` });
  t.true(again.duplicate);
  t.is(again.seq, 2);
  t.is((await s.describe(name))?.events, 2);
});

test('jetstream: beyond the duplicate window a retry is still recognised by its sequence number (looked up in the stream), as the embedded store does', async (t) => {
  const s1 = await openJetStreamStore({ servers: nats.servers, duplicateWindowMs: 500 });
  t.teardown(() => s1.close());
  const name = fresh('window');
  await s1.createFlow(name, '', acl);
  await s1.append(name, 'u', 'p', [ev(1), ev(2), ev(3)]);
  await new Promise((r) => setTimeout(r, 1500)); // the window has passed
  const s2 = await open(t); // no cached state
  t.deepEqual(await s2.append(name, 'u', 'p', [ev(2), ev(3), ev(4)]), { offsets: [2, 3, 4], duplicates: 2 });
  const c = await t.throwsAsync(s2.append(name, 'u', 'p', [ev(1, { id: 'modified' })]), { instanceOf: FlowsError });
  t.is(c?.flowsCode, 'SEQUENCE_CONFLICT');
  t.deepEqual((await readAll(s2, name)).map((e) => e.seq), [1, 2, 3, 4]);
});

test('jetstream: a flow kept for less than the duplicate window is created, its window shortened to its max age (JetStream refuses a longer one)', async (t) => {
  const s = await open(t);
  const name = fresh('shortlived');
  t.like(await s.createFlow(name, '', acl, { maxAgeSeconds: 60 }), { name, retention: { maxAgeSeconds: 60 } });
  const nc = await connect({ servers: nats.servers });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info(`FLOWS_${name}`)).config.duplicate_window, 60 * 1e9);
  t.deepEqual((await s.append(name, 'u', 'p', [ev(1), ev(1)])).offsets, [1, 1]);
});
