/**
 * A dropped control connection does not leak: the sessions its S2UC requested
 * are released (at once, or after `disconnectGraceMs` unless the owner comes
 * back), `keep` sessions survive until released, and a controller's waiting
 * HELLO is withdrawn.
 */
import test from 'ava';
import { S2ucClient, appctrlHello, newUid } from '../../../src/scistream/control/index.js';
import { portReleased, login, rejects, sleep, startS2cs, until } from './harness.js';

test('the S2UC disconnecting releases its sessions: paths closed, ports free, waiting REQUESTs dropped', async (t) => {
  const { port, ds, s2cs } = await startS2cs(t);
  const session = await login(t, port, 'alice');
  const alice = new S2ucClient(session);
  const active = newUid();
  await Promise.all([alice.request({ uid: active, role: 'CONS', numConn: 1 }), alice.update({ uid: active, role: 'CONS', remoteListeners: ['127.0.0.1:9'] })]);
  const pending = newUid();
  const waiting = alice.request({ uid: pending, role: 'PROD', numConn: 1 }).catch((e: unknown) => e);
  await until(() => s2cs.registry.size === 2);
  const listenPort = ds.pathOf(active)!.port;
  session.destroy();
  await waiting;
  await until(() => s2cs.registry.size === 0);
  t.is(ds.paths.size, 0);
  t.true(await portReleased(listenPort));
});

test('keep: the session survives its S2UC disconnecting; the owner can come back on a new connection and release it', async (t) => {
  const { port, ds, s2cs } = await startS2cs(t);
  const first = await login(t, port, 'alice');
  const uid = newUid();
  const c1 = new S2ucClient(first);
  await Promise.all([c1.request({ uid, role: 'CONS', numConn: 1, keep: true }), c1.update({ uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] })]);
  first.destroy();
  await until(() => s2cs.registry.get(uid)?.attached === false);
  await sleep(100);
  t.is(s2cs.registry.get(uid)?.state, 'active');
  t.is(ds.paths.size, 1);
  const bob = new S2ucClient(await login(t, port, 'bob'));
  await rejects(t, bob.release(uid), 'AUTH_ERROR');
  const c2 = new S2ucClient(await login(t, port, 'alice'));
  t.like(await c2.status(uid), { state: 'active', keep: true });
  t.true(s2cs.registry.get(uid)?.attached);
  await c2.release(uid);
  t.is(ds.paths.size, 0);
});

test('disconnectGraceMs: released after the grace period unless the owner acts on it again from a new connection', async (t) => {
  const grace = 1500;
  const { port, ds, s2cs } = await startS2cs(t, { disconnectGraceMs: grace });
  const first = await login(t, port, 'alice');
  const second = await login(t, port, 'alice'); // ready beforehand: a login under load may take a while
  const c1 = new S2ucClient(first);
  const [back, gone] = [newUid(), newUid()];
  for (const uid of [back, gone]) {
    await Promise.all([c1.request({ uid, role: 'CONS', numConn: 1 }), c1.update({ uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] })]);
  }
  const closedAt = Date.now();
  first.destroy();
  await until(() => s2cs.registry.get(back)?.attached === false);
  const c2 = new S2ucClient(second);
  await c2.status(back); // re-attaches
  t.true(Date.now() - closedAt < grace, 're-attached within the grace period');
  t.is(s2cs.registry.get(gone)?.state, 'active', 'not released before the grace period');
  await until(() => s2cs.registry.get(gone) === undefined, 10_000);
  t.true(Date.now() - closedAt >= grace - 50, 'released after the grace period');
  await sleep(200);
  t.is(s2cs.registry.get(back)?.state, 'active', 're-attached: kept');
  t.is(ds.paths.size, 1);
  await c2.release(back);
});

test("an application controller disconnecting withdraws its waiting HELLO", async (t) => {
  const { port, ds, s2cs } = await startS2cs(t);
  const app = await login(t, port, 'appctrl');
  const uid = newUid();
  const hello = appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] }).catch((e: unknown) => e);
  await until(() => s2cs.registry.size === 1);
  app.destroy();
  await hello;
  await until(() => s2cs.registry.size === 0);
  // The REQUEST now waits for a new HELLO (and would time out): the withdrawn one is not used.
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const req = alice.request({ uid, role: 'PROD', numConn: 1 }).catch((e: unknown) => e);
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  await sleep(50);
  t.is(ds.all.length, 0);
  await alice.release(uid);
  await req;
});
