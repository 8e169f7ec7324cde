/**
 * The JetStream backend on a real 3-node nats-server cluster (file storage,
 * 3 replicas): `kill -9` of the stream's leader in the middle of a publish
 * stream through a real FNAA (TLS + SCRAM). Every acknowledged event is
 * stored exactly once, the producer's retries of the batch in flight are
 * stored once, and a durable subscriber resumes from its acknowledged
 * position with no gap and no duplicate — checked by sequence numbers over
 * 100,000 events. Bounded: a fixed number of batches, each retry loop and
 * wait has a count and a deadline.
 */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { openJetStreamStore, type EventInit, type FlowEvent, type FlowStore, type Subscription } from '../../src/flows/index.js';
import { NS, fnua, startFnaa } from './harness.js';
import { startNats } from '../helpers/nats.js';

const TOTAL = 100_000;
const BATCH = 500;
const KILL_AFTER = 40_000;

function batch(from: number): (EventInit & { seq: number })[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const seq = from + i;
    return { seq, id: `e-${seq}`, type: `{${NS}}tick`, source: 'alice', data: `${seq}:${'x'.repeat(190)}` };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('JetStream 3-node cluster, kill -9 of the stream leader during a publish stream: every acknowledged event stored exactly once, a durable subscriber resumes from its acknowledged position with no gap and no duplicate (100,000 events, by sequence numbers)', async (t) => {
  t.timeout(900_000);
  const cluster = await startNats((fn) => t.teardown(fn), 3);
  // The cluster elects its JetStream meta leader: opening (which creates the ack stream, 3 replicas) succeeds once it has (bounded).
  let store: FlowStore | undefined;
  for (let i = 0; i < 60 && !store; i++) {
    store = await openJetStreamStore({ servers: cluster.servers, replicas: 3, timeoutMs: 5000 }).catch(async () => {
      await sleep(1000);
      return undefined;
    });
  }
  if (!store) return t.fail('the JetStream cluster did not become ready within 60 tries');
  const serverErrors: string[] = [];
  const { port } = await startFnaa(t, { store, onError: (e) => serverErrors.push(String((e as Error)?.message ?? e)) });
  const pub = await fnua(t, port);
  await pub.create('ha');

  const nc = await connect({ servers: cluster.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);

  // A durable subscriber reading along, acknowledging every 1,000 events.
  const subClient = await fnua(t, port);
  const sub: Subscription = await subClient.subscribe('ha', { from: 'start', consumer: 'c1', batch: 500 });
  const seenBefore: number[] = [];
  let subAcked = 0;
  const reading = (async () => {
    try {
      for await (const e of sub) {
        seenBefore.push(e.seq);
        if (e.offset % 1000 === 0) subAcked = await sub.ack(e.offset);
        if (seenBefore.length >= KILL_AFTER) break; // it stops reading at the kill
      }
    } catch {
      /* the failover may end the subscription */
    }
  })();

  /** Publish one batch, retrying (same sequence numbers and ids) until it is acknowledged; bounded. */
  let retries = 0;
  const publish = async (from: number, first?: Promise<unknown>): Promise<void> => {
    const events = batch(from);
    let attempt: Promise<unknown> = first ?? pub.publish('ha', 'p1', events);
    for (let i = 0; i < 120; i++) {
      try {
        const r = (await attempt) as { offsets: number[] };
        t.deepEqual(r.offsets, events.map((e) => e.seq), `offsets of the batch from ${from}`);
        return;
      } catch {
        retries++;
        await sleep(500);
        attempt = pub.publish('ha', 'p1', events);
      }
    }
    throw new Error(`the batch from ${from} was not acknowledged after 120 tries`);
  };

  let acked = 0;
  while (acked < KILL_AFTER) {
    await publish(acked + 1);
    acked += BATCH;
  }
  for (let i = 0; i < 600 && subAcked === 0; i++) await sleep(50);
  t.true(subAcked > 0, 'the subscriber acknowledged a position before the kill');

  // kill -9 the stream's leader with the next batch in flight.
  const leader = (await jsm.streams.info('FLOWS_ha')).cluster?.leader;
  const victim = cluster.nodes.find((n) => n.name === leader);
  if (!victim) return t.fail(`no stream leader found (${String(leader)})`);
  const inFlight = pub.publish('ha', 'p1', batch(acked + 1));
  inFlight.catch(() => undefined);
  victim.child.kill('SIGKILL');
  await victim.exited;
  t.log(`killed ${victim.name}, the leader of the stream, after ${acked} acknowledged events`);
  await publish(acked + 1, inFlight);
  acked += BATCH;
  const newLeader = (await jsm.streams.info('FLOWS_ha')).cluster?.leader;
  t.not(newLeader, leader, 'another node leads the stream');
  while (acked < TOTAL) {
    await publish(acked + 1);
    acked += BATCH;
  }
  // The subscriber stopped reading at the kill (or the failover ended its subscription); bounded wait.
  const readTimer = setTimeout(() => void subClient.close(), 60_000);
  await reading;
  clearTimeout(readTimer);
  await subClient.close();
  t.log(`the subscriber read ${seenBefore.length} events and acknowledged up to ${subAcked}`);
  t.log(`publish retries across the failover: ${retries}; leader ${leader} → ${newLeader}`);
  t.like(await pub.describe('ha'), { events: TOTAL, nextOffset: TOTAL + 1 });

  // Every event exactly once, in order.
  const all = await pub.subscribe('ha', { from: 'start', follow: false, batch: 1000 });
  let expected = 1;
  let mismatches = 0;
  for await (const e of all) {
    if (e.seq !== expected || e.offset !== expected || e.id !== `e-${expected}`) mismatches++;
    expected++;
    if (expected > TOTAL + 10) break; // bound
  }
  if (serverErrors.length > 0) t.log(`server errors: ${serverErrors.slice(0, 5).join(' | ')}`);
  t.is(mismatches, 0, 'no gap, no duplicate, no reordering');
  t.is(expected - 1, TOTAL);

  // The durable subscriber resumes right after its acknowledged position (kept on the cluster).
  const resumed = await pub.subscribe('ha', { from: 'acked', consumer: 'c1', follow: false, batch: 1000 });
  t.is(resumed.from, subAcked + 1);
  const after: FlowEvent[] = [];
  for await (const e of resumed) {
    after.push(e);
    if (after.length > TOTAL) break; // bound
  }
  const processed = [...seenBefore.slice(0, subAcked), ...after.map((e) => e.seq)];
  t.is(processed.length, TOTAL, 'acknowledged before the kill + delivered after = every event once');
  let gaps = 0;
  for (let i = 0; i < processed.length; i++) if (processed[i] !== i + 1) gaps++;
  t.is(gaps, 0, 'no gap and no duplicate across the failover');
});
