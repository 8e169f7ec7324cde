/**
 * Full stack, real components: releasing a SciStream session in the middle
 * of a transfer, another identity's RELEASE refused on a live session, and
 * the S2UC's control connection dropping (sessions released unless `keep`).
 * Every application socket is watched until it closes, and every data port
 * until this process no longer holds it.
 */
import test, { type ExecutionContext } from 'ava';
import { SciStreamError, newUid, type S2ucClient, type SciStreamErrorCode } from '../../src/scistream/control/index.js';
import {
  MiB, checkStream, consumerStream, dataPorts, heldPorts, login, openSession, portsOf, producerApp, producerEnd, startFacilities, until, within,
  type StreamEnd,
} from './roles-harness.js';

const BIG = 512 * MiB;

/** Assert that `p` rejects with a SciStreamError of `code` (and `replyCode` if given). */
async function rejectsWith(t: ExecutionContext, p: Promise<unknown>, code: SciStreamErrorCode, replyCode?: number): Promise<void> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof SciStreamError, String(err));
  t.is((err as SciStreamError).code, code, (err as Error).message);
  if (replyCode !== undefined) t.is((err as SciStreamError).replyCode, replyCode);
}

/**
 * Wait (bounded) until STATUS on the consumer facility shows no application
 * connection open: only then is the num_conn slot of a finished stream free
 * again (the S2DS frees it when the stream's data channel has closed, a round
 * trip after the application sockets closed).
 */
async function slotsFree(s2uc: S2ucClient, uid: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while ((await s2uc.status(uid)).stats?.open !== 0) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for the streams of the session to close`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The ends (named) of cut streams that saw a clean end of data: a FIN and no
 * error. The S2DS aborts application connections with an RST; a Node
 * application may still see 'end' first (libuv reports EOF when the RST
 * arrives right after a partial read), but its next write then fails with
 * ECONNRESET/EPIPE — every end here keeps writing, so each must see the reset.
 */
const cleanEnds = (ends: readonly (readonly [string, StreamEnd])[]): string[] =>
  ends.filter(([, e]) => e.gotEnd && e.error === undefined).map(([who, e]) => `${who} of stream ${e.session}/${e.stream} got FIN and no error after ${e.received} octets`);

const total = (ends: readonly StreamEnd[]): number => ends.reduce((a, e) => a + e.received, 0);

test.serial('RELEASE in the middle of a 512 MiB transfer: every application socket closes promptly, STATUS says INVALID_UID, the ports are free', async (t) => {
  t.timeout(120_000);
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, BIG);
  const uid = newUid();
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn: 2, producer: producer.address }), 30_000, 'session set up');
  const ports = [...portsOf(s.prod.listeners), ...portsOf(s.cons.listeners)];
  t.deepEqual(new Set([...dataPorts(prod), ...dataPorts(cons)]), new Set(ports));

  const consumers = await Promise.all(s.listeners.map((l, j) => consumerStream(t, l, 0, j, BIG)));
  const producers = await Promise.all(s.listeners.map((_, j) => producerEnd(producer, 0, j)));
  // Both directions of both streams under way, some MB through.
  await until(() => total(consumers) >= 16 * MiB && total(producers) >= 16 * MiB && [...consumers, ...producers].every((e) => e.received > 0), 60_000, '16 MiB each way');
  const before = { toConsumer: total(consumers), toProducer: total(producers) };
  const st = await prodU.status(uid);
  t.is(st.state, 'active');
  t.is(st.stats?.open, 2, 'both streams open on the producer side');

  const t0 = performance.now();
  const [rp, rc] = await within(Promise.all([prodU.release(uid), consU.release(uid).catch((e: unknown) => e)]), 10_000, 'RELEASE on both facilities');
  const releaseMs = performance.now() - t0;
  t.is(rp.state, 'closed');
  // The producer side's release ends the consumer side's data connection, which ends that
  // session by itself (spec §4.3 "DataPath.closed"); a consumer RELEASE arriving after that
  // finds no session: INVALID_UID. Both outcomes leave everything freed (checked below).
  if (rc instanceof SciStreamError) {
    t.is(rc.code, 'INVALID_UID', rc.message);
    t.log('the consumer-side RELEASE lost the race with the path closing on its own: INVALID_UID');
  } else {
    t.is((rc as { state?: string }).state, 'closed');
  }
  const sockets = [...consumers, ...producers];
  await within(Promise.all(sockets.map((e) => e.closed)), 5_000, 'every application socket closed after RELEASE');
  const closedMs = Math.max(...sockets.map((e) => e.closedAt)) - t0;
  t.true(sockets.every((e) => e.socket.destroyed), 'all four application sockets are closed');
  t.true(total(consumers) < 2 * BIG && total(producers) < 2 * BIG, 'the transfer was cut, not completed');
  t.deepEqual(cleanEnds([...consumers.map((e) => ['consumer', e] as const), ...producers.map((e) => ['producer', e] as const)]), [], 'every application saw its cut stream reset, none a clean end of data');

  await rejectsWith(t, prodU.status(uid), 'INVALID_UID', 550);
  await rejectsWith(t, consU.status(uid), 'INVALID_UID', 550);
  t.is(prodU.stateOf(uid), 'released');
  t.is(prod.data.paths.length, 0);
  t.is(cons.data.paths.length, 0);
  t.is(prod.control.registry.size, 0);
  t.is(cons.control.registry.size, 0);
  t.deepEqual(await heldPorts(ports), [], 'every data port is free');
  // The uid carried data: it cannot be used again.
  await rejectsWith(t, prodU.request({ uid, role: 'PROD', numConn: 1 }), 'INVALID_UID');
  t.log(`released after ${(before.toConsumer / MiB).toFixed(0)} MiB to the consumer and ${(before.toProducer / MiB).toFixed(0)} MiB to the producer; ` +
    `RELEASE answered in ${releaseMs.toFixed(0)} ms, all application sockets closed ${closedMs.toFixed(0)} ms after it was sent`);
});

test.serial("another identity's RELEASE (and STATUS) on a live session: AUTH_ERROR 537, and the session keeps carrying data", async (t) => {
  t.timeout(120_000);
  const SIZE = 64 * MiB;
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const [malP, malC] = await Promise.all([login(t, prod, 'mallory'), login(t, cons, 'mallory')]);
  const producer = await producerApp(t, SIZE);
  const uid = newUid();
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn: 1, producer: producer.address }), 30_000, 'session set up');
  const c = await consumerStream(t, s.listeners[0] as string, 0, 0, SIZE);
  const p = await producerEnd(producer, 0, 0);
  await until(() => c.received >= 4 * MiB && p.received >= 4 * MiB, 60_000, 'data flowing both ways');
  const midway = c.received < SIZE && p.received < SIZE;

  for (const [mal, name] of [[malP, 'producer'], [malC, 'consumer']] as [S2ucClient, string][]) {
    const err = await t.throwsAsync(mal.release(uid));
    t.true(err instanceof SciStreamError, `${name}: ${String(err)}`);
    t.is((err as SciStreamError).code, 'AUTH_ERROR', name);
    t.is((err as SciStreamError).replyCode, 537, name);
    await rejectsWith(t, mal.status(uid), 'AUTH_ERROR', 537);
  }
  // Also from the application controller's account: HELLO is by uid possession, RELEASE is the owner's.
  await rejectsWith(t, appctrl.release(uid), 'AUTH_ERROR', 537);
  t.is(prod.control.registry.get(uid)?.state, 'active');
  t.is(cons.control.registry.get(uid)?.state, 'active');
  t.false(c.socket.destroyed || p.socket.destroyed, 'the transfer goes on');

  await within(Promise.all([c.closed, p.closed]), 60_000, 'transfer finished');
  checkStream(t, c, p, SIZE, SIZE);
  // And a new stream after the refused RELEASEs still works.
  await slotsFree(consU, uid);
  const c2 = await consumerStream(t, s.listeners[0] as string, 0, 1, MiB);
  const p2 = await producerEnd(producer, 0, 1);
  await within(Promise.all([c2.closed, p2.closed]), 30_000, 'second stream finished');
  checkStream(t, c2, p2, MiB, SIZE);
  const st = await prodU.status(uid);
  t.is(st.state, 'active');
  t.is(st.stats?.connections, 2);

  const ports = [...dataPorts(prod), ...dataPorts(cons)];
  // Consumer side first: releasing the producer side first ends the consumer side's data path, and with it its session.
  t.is((await consU.release(uid)).state, 'closed');
  t.is((await prodU.release(uid)).state, 'closed');
  t.deepEqual(await heldPorts(ports), []);
  t.log(midway ? 'the refused RELEASEs came in the middle of the 64 MiB transfer' : 'note: the transfer had already finished when the RELEASEs came');
  t.true(midway, 'the refused RELEASEs came while data was flowing');
});

test.serial('the S2UC control connections dropping release their sessions (paths, sockets, ports), except a keep session, which goes on', async (t) => {
  t.timeout(120_000);
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const controls = { prodU, consU, appctrl };
  const bigProducer = await producerApp(t, BIG);
  const keptProducer = await producerApp(t, 64 * MiB);
  const dropped = await openSession(controls, { uid: newUid(), numConn: 2, producer: bigProducer.address });
  const kept = await openSession(controls, { uid: newUid(), numConn: 1, producer: keptProducer.address, keep: true });
  const droppedPorts = [...portsOf(dropped.prod.listeners), ...portsOf(dropped.cons.listeners)];
  const keptPorts = [...portsOf(kept.prod.listeners), ...portsOf(kept.cons.listeners)];
  t.is(prod.data.paths.length, 2);
  t.is(cons.data.paths.length, 2);

  const dc = await Promise.all(dropped.listeners.map((l, j) => consumerStream(t, l, 0, j, BIG)));
  const dp = await Promise.all(dropped.listeners.map((_, j) => producerEnd(bigProducer, 0, j)));
  const kc = await consumerStream(t, kept.listeners[0] as string, 1, 0, 64 * MiB);
  const kp = await producerEnd(keptProducer, 1, 0);
  await until(() => total(dc) >= 8 * MiB && total(dp) >= 8 * MiB && kc.received > 0 && kp.received > 0, 60_000, 'both sessions carrying data');

  // TCP loss of the producer-side S2UC connection, a polite BEEP release of the consumer-side one.
  const t0 = performance.now();
  prodU.session.destroy();
  await consU.close();
  await within(consU.session.close(), 10_000, 'consumer-side control session released');
  await within(Promise.all([...dc, ...dp].map((e) => e.closed)), 10_000, "the dropped session's application sockets closed");
  const closedMs = performance.now() - t0;
  await until(() => prod.data.paths.length === 1 && cons.data.paths.length === 1, 10_000, 'the dropped session’s paths closed');
  t.is(prod.control.registry.get(dropped.uid), undefined);
  t.is(cons.control.registry.get(dropped.uid), undefined);
  t.deepEqual(await heldPorts(droppedPorts), [], "the dropped session's data ports are free");
  t.deepEqual(cleanEnds([...dc.map((e) => ['consumer', e] as const), ...dp.map((e) => ['producer', e] as const)]), [], 'every application saw its cut stream reset, none a clean end of data');

  // The keep session is untouched: its transfer completes intact, and it still takes new streams.
  t.is(prod.control.registry.get(kept.uid)?.state, 'active');
  t.is(cons.control.registry.get(kept.uid)?.state, 'active');
  t.false(prod.control.registry.get(kept.uid)?.attached, 'kept, detached from its gone connection');
  await within(Promise.all([kc.closed, kp.closed]), 60_000, 'kept session transfer');
  checkStream(t, kc, kp, 64 * MiB, 64 * MiB);
  const consAgain = await login(t, cons); // the owner, from a new connection: STATUS shows when the stream slot is free
  await slotsFree(consAgain, kept.uid);
  const kc2 = await consumerStream(t, kept.listeners[0] as string, 1, 1, MiB);
  const kp2 = await producerEnd(keptProducer, 1, 1);
  await within(Promise.all([kc2.closed, kp2.closed]), 30_000, 'a new stream on the kept session');
  checkStream(t, kc2, kp2, MiB, 64 * MiB);

  // The owner comes back on new connections and releases it.
  const prodU2 = await login(t, prod);
  const st = await prodU2.status(kept.uid);
  t.like(st, { state: 'active', keep: true });
  t.is(st.stats?.connections, 2);
  t.true(cons.control.registry.get(kept.uid)?.attached, 're-attached by the STATUS on the new connection');
  t.is((await consAgain.release(kept.uid)).state, 'closed');
  t.is((await prodU2.release(kept.uid)).state, 'closed');
  t.is(prod.data.paths.length, 0);
  t.is(cons.data.paths.length, 0);
  t.deepEqual(await heldPorts(keptPorts), []);
  t.log(`the dropped session's application sockets were closed ${closedMs.toFixed(0)} ms after the control connections went`);
});

test.serial('only the producer-side S2UC connection drops: its release cascades — the consumer side loses its data connection and frees its session too', async (t) => {
  t.timeout(180_000);
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, BIG);
  const s = await openSession({ prodU, consU, appctrl }, { uid: newUid(), numConn: 1, producer: producer.address });
  const ports = [...portsOf(s.prod.listeners), ...portsOf(s.cons.listeners)];
  const c = await consumerStream(t, s.listeners[0] as string, 0, 0, BIG);
  const p = await producerEnd(producer, 0, 0);
  await until(() => c.received >= 4 * MiB && p.received >= 4 * MiB, 60_000, 'data flowing');
  prodU.session.destroy();
  await within(Promise.all([c.closed, p.closed]), 10_000, 'application sockets closed');
  t.deepEqual(cleanEnds([['consumer', c], ['producer', p]]), [], 'every application saw its cut stream reset, none a clean end of data');
  await until(() => prod.control.registry.size === 0 && cons.control.registry.size === 0, 10_000, 'both registries empty');
  await rejectsWith(t, consU.status(s.uid), 'INVALID_UID', 550);
  t.is(prod.data.paths.length, 0);
  t.is(cons.data.paths.length, 0);
  t.deepEqual(await heldPorts(ports), []);
  // The appctrl connection (not the owner) staying open held nothing.
  t.false(appctrl.session.core.isClosed);
});
