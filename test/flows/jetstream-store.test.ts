/**
 * The JetStream store against a real nats-server process (JetStream, file
 * storage) on 127.0.0.1: the FlowStore contract (`store-contract.ts`), and
 * the producer state and consumer positions surviving a reopen of the store.
 */
import test from 'ava';
import { openJetStreamStore, type FlowStore } from '../../src/flows/index.js';
import { acl, ev, fresh, readAll, storeContract } from './store-contract.js';
import { startNats, type NatsCluster } from './nats.js';

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
