/**
 * `kill -9` of a real `flows serve` process in the middle of a publish
 * stream: after a restart on the same store, every acknowledged event is
 * stored exactly once, the producer's retry of the batch in flight is stored
 * once, and a durable subscriber resumes from its acknowledged position with
 * no gap and no duplicate — all checked by sequence numbers over 100,000
 * events. Bounded: a fixed number of batches, each wait has a deadline.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scramSha256Client } from '../../src/index.js';
import { connectFlows, FlowsError, type EventInit, type FlowEvent, type FlowsClient, type Subscription } from '../../src/flows/index.js';
import { NS, PASSWORD, pki } from './harness.js';
import { startServe } from './process.js';

const TOTAL = 100_000;
const BATCH = 500;
const KILL_AFTER = 40_000; // acknowledged events before the kill

function client(port: number): Promise<FlowsClient> {
  return connectFlows({ port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: 'alice', password: PASSWORD }) });
}

function batch(from: number): (EventInit & { seq: number })[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const seq = from + i;
    return { seq, id: `e-${seq}`, type: `{${NS}}tick`, source: 'alice', data: `${seq}:${'x'.repeat(190)}` };
  });
}

test('kill -9 during a publish stream: after restart every acknowledged event is stored exactly once and a durable subscriber resumes from its acknowledged position with no gap and no duplicate (100,000 events, by sequence numbers)', async (t) => {
  t.timeout(300_000);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'store', 'flows.db');

  const first = await startServe(t, dir, data);
  const pub = await client(first.port);
  await pub.create('crash');

  // A durable subscriber reading along, acknowledging every 1,000 events.
  const subClient = await client(first.port);
  const sub: Subscription = await subClient.subscribe('crash', { from: 'start', consumer: 'c1', batch: 100 });
  const seenBefore: number[] = [];
  let subAcked = 0;
  // An acknowledgement whose reply the kill cut off may or may not have been committed.
  let ackSent = 0;
  const reading = (async () => {
    try {
      for await (const e of sub) {
        seenBefore.push(e.seq);
        if (e.offset % 1000 === 0) {
          ackSent = e.offset;
          subAcked = await sub.ack(e.offset);
        }
        if (seenBefore.length > TOTAL) break; // bound
      }
    } catch {
      /* the server was killed */
    }
  })();

  // Publish until KILL_AFTER events are acknowledged, then kill -9 with the next batch in flight.
  let acked = 0;
  for (let i = 0; i < KILL_AFTER / BATCH; i++) {
    const r = await pub.publish('crash', 'p1', batch(acked + 1));
    t.deepEqual(r.offsets, batch(acked + 1).map((e) => e.seq), 'offsets follow the sequence numbers');
    acked += BATCH;
  }
  // Let the subscriber acknowledge something before the crash (bounded wait).
  for (let i = 0; i < 600 && subAcked === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.true(subAcked > 0, 'the subscriber acknowledged a position before the crash');
  const inFlight = batch(acked + 1);
  const lost = pub.publish('crash', 'p1', inFlight);
  first.child.kill('SIGKILL');
  const err = await t.throwsAsync(lost);
  t.true(err instanceof FlowsError, `the publish in flight fails with a FlowsError, got ${String(err)}`);
  await first.exited;
  await reading;
  await pub.close();
  await subClient.close();

  // Restart on the same store.
  const second = await startServe(t, dir, data);
  const pub2 = await client(second.port);
  const info = await pub2.describe('crash');
  t.true(info.events >= acked && info.events <= acked + BATCH, `every acknowledged event is there (${info.events} ≥ ${acked}); at most the batch in flight besides`);
  t.is(await pub2.lastSeq('crash', 'p1'), info.events, 'the producer state survived with the log');
  // The producer retries the batch whose acknowledgement it never got: stored once.
  const retry = await pub2.publish('crash', 'p1', inFlight);
  t.deepEqual(retry.offsets, inFlight.map((e) => e.seq));
  t.is(retry.duplicates, info.events - acked);
  acked += BATCH;
  while (acked < TOTAL) {
    await pub2.publish('crash', 'p1', batch(acked + 1));
    acked += BATCH;
  }
  t.is((await pub2.describe('crash')).events, TOTAL);

  // Every event exactly once, in order: offsets and sequence numbers 1..TOTAL.
  const all = await pub2.subscribe('crash', { from: 'start', follow: false, batch: 1000 });
  let expected = 1;
  let mismatches = 0;
  for await (const e of all) {
    if (e.seq !== expected || e.offset !== expected || e.id !== `e-${expected}`) mismatches++;
    expected++;
  }
  t.is(mismatches, 0, 'no gap, no duplicate, no reordering');
  t.is(expected - 1, TOTAL);

  // The durable subscriber resumes right after its acknowledged position.
  const resumed = await pub2.subscribe('crash', { from: 'acked', consumer: 'c1', follow: false, batch: 500 });
  // Right after the last position the server confirmed, or after the one whose confirmation
  // the kill cut off (committed, its reply lost); the subscriber had read both already.
  t.true(resumed.from === subAcked + 1 || resumed.from === ackSent + 1, `it resumes right after the acknowledged position (${resumed.from}; confirmed ${subAcked}, last sent ${ackSent})`);
  t.true(seenBefore.length >= ackSent, 'the subscriber read everything up to what it acknowledged');
  const after: FlowEvent[] = [];
  for await (const e of resumed) after.push(e);
  const processed = [...seenBefore.slice(0, resumed.from - 1), ...after.map((e) => e.seq)];
  t.is(processed.length, TOTAL, 'acknowledged before the crash + delivered after = every event once');
  let gaps = 0;
  for (let i = 0; i < processed.length; i++) if (processed[i] !== i + 1) gaps++;
  t.is(gaps, 0, 'no gap and no duplicate across the crash');
  await pub2.close();
});
