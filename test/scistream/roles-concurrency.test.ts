/**
 * Full stack, real components: 50 SciStream sessions at once on one pair of
 * S2CS — distinct uids, num_conn 1 or 2, 1 MiB each way per stream with
 * SHA-256 at both ends — all released afterwards, leaving both data servers
 * without paths and without listening ports.
 */
import test from 'ava';
import { SciStreamError, newUid } from '../../src/scistream/control/index.js';
import {
  MiB, checkStream, consumerStream, dataPorts, heldPorts, login, openSession, producerApp, producerEnd, startFacilities, within,
  type OpenSession, type StreamEnd,
} from './roles-harness.js';

test.serial('50 concurrent sessions on one pair of S2CS: every byte intact both ways, all released, no path and no port left', async (t) => {
  t.timeout(240_000);
  const N = 50;
  const SIZE = 1 * MiB;
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const controls = { prodU, consU, appctrl };
  // One producer application per session: HELLO registers each its own endpoint, so the routing is checked too.
  const producers = await Promise.all(Array.from({ length: N }, () => producerApp(t, SIZE)));
  const plan = Array.from({ length: N }, (_, i) => ({ uid: newUid(), numConn: 1 + (i % 2) }));
  t.is(new Set(plan.map((p) => p.uid)).size, N, 'distinct uids');

  const t0 = performance.now();
  const sessions: OpenSession[] = await within(
    Promise.all(plan.map((p, i) => openSession(controls, { uid: p.uid, numConn: p.numConn, producer: (producers[i] as { address: string }).address }))),
    90_000,
    `${N} sessions set up`,
  );
  const setupMs = performance.now() - t0;
  t.is(prod.control.registry.size, N);
  t.is(cons.control.registry.size, N);
  t.is(prod.data.paths.length, N, 'one inbound path per session');
  t.is(cons.data.paths.length, N, 'one outbound path per session');
  sessions.forEach((s, i) => {
    t.is(s.prod.listeners.length, 1);
    t.is(s.listeners.length, plan[i]!.numConn, 'num_conn consumer listeners');
  });
  const ports = [...dataPorts(prod), ...dataPorts(cons)];
  const expectedPorts = N + plan.reduce((a, p) => a + p.numConn, 0);
  t.is(ports.length, expectedPorts);
  t.is(new Set(ports).size, expectedPorts, 'no port shared by two paths');

  // Every stream of every session at once.
  const t1 = performance.now();
  const consumerEnds: StreamEnd[] = await within(
    Promise.all(sessions.flatMap((s, i) => s.listeners.map((l, j) => consumerStream(t, l, i, j, SIZE)))),
    30_000,
    'consumer connections',
  );
  await within(Promise.all(consumerEnds.map((e) => e.closed)), 120_000, 'every stream finished');
  const producerEnds = await Promise.all(consumerEnds.map((c) => producerEnd(producers[c.session] as Parameters<typeof producerEnd>[0], c.session, c.stream)));
  await within(Promise.all(producerEnds.map((e) => e.closed)), 10_000, 'producer sockets closed');
  const transferMs = performance.now() - t1;
  consumerEnds.forEach((c, k) => checkStream(t, c, producerEnds[k], SIZE, SIZE));
  producers.forEach((p, i) => {
    t.is(p.ends.length, plan[i]!.numConn, `producer ${i} got exactly its session's streams`);
    t.true(p.ends.every((e) => e.session === i), `producer ${i} got only its own session's streams`);
  });

  // STATUS tells what was carried.
  const st = await Promise.all(sessions.map((s) => prodU.status(s.uid)));
  st.forEach((s, i) => {
    t.is(s.state, 'active');
    t.is(s.stats?.connections, plan[i]!.numConn);
    t.is(s.stats?.bytesToProducer, (plan[i]?.numConn ?? 0) * (SIZE + 8));
    t.is(s.stats?.bytesToConsumer, (plan[i]?.numConn ?? 0) * SIZE);
  });

  // Release everything: all 50 at once on each facility, the consumer side first (releasing the
  // producer side first ends the consumer side's sessions by themselves, and its RELEASEs would
  // then find no session).
  const t2 = performance.now();
  const releasedC = await within(Promise.all(sessions.map((s) => consU.release(s.uid))), 30_000, 'every consumer-side RELEASE');
  t.is(cons.data.paths.length, 0, 'consumer S2DS holds no path');
  t.is(prod.data.paths.length, N, 'the producer side still holds its paths');
  const releasedP = await within(Promise.all(sessions.map((s) => prodU.release(s.uid))), 30_000, 'every producer-side RELEASE');
  const releaseMs = performance.now() - t2;
  t.true([...releasedC, ...releasedP].every((r) => r.state === 'closed'));
  t.is(prod.control.registry.size, 0);
  t.is(cons.control.registry.size, 0);
  t.is(prod.data.paths.length, 0, 'producer S2DS holds no path');
  t.is(cons.data.paths.length, 0, 'consumer S2DS holds no path');
  t.deepEqual(await heldPorts(ports), [], 'every data port is free');
  const e = await t.throwsAsync(consU.status((sessions[0] as OpenSession).uid));
  t.true(e instanceof SciStreamError && e.code === 'INVALID_UID');
  t.log(`${N} sessions (${expectedPorts - N} streams, ${((2 * (expectedPorts - N) * SIZE) / MiB).toFixed(0)} MiB in total): ` +
    `setup ${setupMs.toFixed(0)} ms, transfer ${transferMs.toFixed(0)} ms, release ${releaseMs.toFixed(0)} ms`);
});
