/**
 * Full stack, real components: the `rate` of a REQUEST is honoured end to
 * end — 8 MiB/s per direction for the whole session (two streams), measured
 * at the receiving applications: never more than 10 % over it, and not starved
 * (a loaded machine may fall short of it on its own; rate figures belong in the
 * benchmark, not here).
 */
import test from 'ava';
import { newUid } from '../../src/scistream/control/index.js';
import { MiB, checkStream, consumerStream, heldPorts, login, openSession, portsOf, producerApp, producerEnd, startFacilities, within, type StreamEnd } from './roles-harness.js';

test.serial('rate 8 MiB/s: about 3 s for 24 MiB each way over two streams, measured at both applications: never 10 % over, not starved', async (t) => {
  t.timeout(240_000);
  const rate = 8 * MiB;
  const perStream = 12 * MiB; // two streams: 24 MiB each way, 3 s at the rate
  const numConn = 2;
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, perStream);
  const uid = newUid();
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn, producer: producer.address, rate }), 60_000, 'session set up');
  t.is((await prodU.status(uid)).rate, rate, 'producer side has the rate');
  t.is((await consU.status(uid)).rate, rate, 'consumer side has the rate');

  const consumers = await Promise.all(s.listeners.map((l, j) => consumerStream(t, l, 0, j, perStream)));
  const producers = await Promise.all(s.listeners.map((_, j) => producerEnd(producer, 0, j)));
  await within(Promise.all([...consumers, ...producers].map((e) => e.closed)), 150_000, 'paced transfer');
  consumers.forEach((c, j) => checkStream(t, c, producers[j], perStream, perStream));
  // Octets after the first one arrived, over the time from the first to the last (the header excluded).
  const measure = (ends: readonly StreamEnd[]): { rate: number; seconds: number } => {
    const seconds = (Math.max(...ends.map((e) => e.lastByteAt)) - Math.min(...ends.map((e) => e.firstByteAt))) / 1000;
    return { rate: (numConn * perStream) / seconds, seconds };
  };
  const toConsumer = measure(consumers);
  const toProducer = measure(producers);
  t.log(`producer → consumer ${(toConsumer.rate / MiB).toFixed(2)} MiB/s (${toConsumer.seconds.toFixed(2)} s), ` +
    `consumer → producer ${(toProducer.rate / MiB).toFixed(2)} MiB/s (${toProducer.seconds.toFixed(2)} s); rate ${rate / MiB} MiB/s`);
  // Never over the rate (+10 % for timing); below it only a stall (under 5 %) fails: a loaded
  // machine falls short on its own (a quarter of the rate was seen at a load of 16 on two cores).
  for (const [what, got] of [['producer → consumer', toConsumer.rate], ['consumer → producer', toProducer.rate]] as const) {
    t.true(got < rate * 1.1, `${what} ${(got / MiB).toFixed(2)} MiB/s exceeds the rate`);
    t.true(got > rate * 0.05, `${what} ${(got / MiB).toFixed(2)} MiB/s is starved`);
  }
  const st = await prodU.status(uid);
  t.is(st.stats?.bytesToConsumer, numConn * perStream);
  t.is(st.stats?.bytesToProducer, numConn * (perStream + 8));

  const ports = [...portsOf(s.prod.listeners), ...portsOf(s.cons.listeners)];
  t.is((await consU.release(uid)).state, 'closed');
  t.is((await prodU.release(uid)).state, 'closed');
  t.deepEqual(await heldPorts(ports), []);
});
