/**
 * The control flows over real TLS + SCRAM sessions and a data server with
 * real listeners: PROD (REQUEST ↔ HELLO in either order), CONS (REQUEST ↔
 * UPDATETARGETS in either order, optional HELLO), STATUS, RELEASE freeing the
 * ports, a data path closing by itself, a data-server failure.
 */
import test from 'ava';
import net from 'node:net';
import { S2ucClient, SciStreamError, appctrlHello, newUid } from '../../../src/scistream/control/index.js';
import { appListener, portReleased, login, rejects, startS2cs, until } from './harness.js';

function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}

test('PROD: REQUEST waits for HELLO, then the inbound path opens; RESPONSE and APPRESPONSE carry its listeners; RELEASE frees the port', async (t) => {
  const { at, ds, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const app = await login(t, at, 'appctrl');
  const prodApp = await appListener(t);
  const uid = newUid();

  const request = s2uc.request({ uid, role: 'PROD', numConn: 3, rate: 1_000_000 });
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  t.is(s2uc.stateOf(uid), 'request-pending');
  t.is(ds.paths.size, 0, 'nothing is opened before the HELLO');

  const hello = await appctrlHello(app, { uid, role: 'PROD', prodListeners: [prodApp] });
  const response = await request;
  const path = ds.pathOf(uid);
  t.truthy(path);
  t.is(path!.kind, 'inbound');
  t.deepEqual(path!.spec, { uid, targets: [prodApp], numConn: 3, rate: 1_000_000 });
  t.deepEqual(response, { type: 'response', uid, state: 'active', listeners: [...path!.listeners], prodListeners: [prodApp] });
  t.deepEqual(hello, { type: 'appresponse', uid, message: 'session active', listeners: [...path!.listeners] });
  t.is(s2uc.stateOf(uid), 'active-streaming');

  // The listener is real: connect to it.
  const listenPort = portOf(response.listeners[0]!);
  await new Promise<void>((resolve, reject) => net.connect(listenPort, '127.0.0.1', function (this: net.Socket) { this.end(); resolve(); }).once('error', reject));
  await until(async () => (await s2uc.status(uid)).stats?.connections === 1);

  const status = await s2uc.status(uid);
  t.like(status, { type: 'statusresponse', uid, role: 'PROD', state: 'active', numConn: 3, rate: 1_000_000, keep: false, listeners: response.listeners, prodListeners: [prodApp], remoteListeners: [] });
  t.is(status.expiresIn, undefined);

  const released = await s2uc.release(uid);
  t.deepEqual(released, { type: 'response', uid, state: 'closed', listeners: [], prodListeners: [] });
  t.is(s2uc.stateOf(uid), 'released');
  t.is(path!.closeCalls, 1);
  t.is(ds.paths.size, 0);
  t.is(s2cs.registry.size, 0);
  t.true(await portReleased(listenPort), 'the port is free again');
  await rejects(t, s2uc.status(uid), 'INVALID_UID');
  await rejects(t, s2uc.request({ uid, role: 'PROD', numConn: 1 }), 'INVALID_UID'); // a uid that carried data is not reused
});

test('PROD: a HELLO before the REQUEST waits for it; the REQUEST then proceeds at once', async (t) => {
  const { at, ds, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const app = await login(t, at, 'appctrl');
  const uid = newUid();
  const hello = appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:9', 'prod.example:5000'] });
  await until(() => s2cs.registry.get(uid) !== undefined);
  t.is(ds.paths.size, 0);
  const response = await s2uc.request({ uid, role: 'PROD', numConn: 1 });
  t.deepEqual(response.prodListeners, ['127.0.0.1:9', 'prod.example:5000']);
  t.deepEqual((await hello).listeners, response.listeners);
  t.deepEqual(ds.pathOf(uid)!.spec.numConn, 1);
  // A repeated HELLO from the same controller is answered at once.
  t.deepEqual((await appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:9', 'prod.example:5000'] })).listeners, response.listeners);
  // A HELLO trying to change the producer endpoints of an active session is refused.
  await rejects(t, appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:10'] }), 'NOT_IMPLEMENTED');
  await rejects(t, appctrlHello(app, { uid, role: 'CONS' }), 'BAD_FORMAT');
  await s2uc.release(uid);
});

test('CONS: REQUEST then UPDATETARGETS, and UPDATETARGETS then REQUEST, open the outbound path; an optional HELLO gets its listeners', async (t) => {
  const { at, ds, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const app = await login(t, at, 'appctrl');
  const remote = ['198.51.100.7:5100', '198.51.100.8:5100'];

  const uid1 = newUid();
  const req1 = s2uc.request({ uid: uid1, role: 'CONS', numConn: 2 });
  const hello1 = appctrlHello(app, { uid: uid1, role: 'CONS' });
  await until(() => s2cs.registry.get(uid1)?.state === 'pending');
  const upd1 = await s2uc.update({ uid: uid1, role: 'CONS', remoteListeners: remote });
  const res1 = await req1;
  const path1 = ds.pathOf(uid1)!;
  t.is(path1.kind, 'outbound');
  t.deepEqual(path1.spec, { uid: uid1, remotes: remote, numConn: 2 });
  t.deepEqual(res1, { type: 'response', uid: uid1, state: 'active', listeners: [...path1.listeners], prodListeners: [] });
  t.deepEqual(upd1, res1);
  t.deepEqual((await hello1).listeners, res1.listeners);
  // A HELLO after the path opened is answered at once.
  t.deepEqual((await appctrlHello(app, { uid: uid1, role: 'CONS' })).listeners, res1.listeners);
  // The same targets again: answered at once; other targets: not supported on an active session.
  t.deepEqual((await s2uc.update({ uid: uid1, role: 'CONS', remoteListeners: remote })).listeners, res1.listeners);
  await rejects(t, s2uc.update({ uid: uid1, role: 'CONS', remoteListeners: ['198.51.100.9:1'] }), 'NOT_IMPLEMENTED');
  await rejects(t, s2uc.update({ uid: uid1, role: 'PROD', remoteListeners: [] }), 'BAD_FORMAT');

  const uid2 = newUid();
  const upd2 = s2uc.update({ uid: uid2, role: 'CONS', remoteListeners: remote });
  await until(() => s2cs.registry.get(uid2) !== undefined);
  t.is(ds.pathOf(uid2), undefined);
  const res2 = await s2uc.request({ uid: uid2, role: 'CONS', numConn: 1, rate: 5000 });
  t.deepEqual(await upd2, res2);
  t.deepEqual(ds.pathOf(uid2)!.spec, { uid: uid2, remotes: remote, numConn: 1, rate: 5000 });

  await Promise.all([s2uc.release(uid1), s2uc.release(uid2)]);
  t.is(ds.paths.size, 0);
  for (const p of ds.all) t.true(await portReleased(p.port));
});

test('PROD UPDATETARGETS is recorded and answered at once; STATUS of a pending session shows the time left', async (t) => {
  const { at, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 20_000 });
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const uid = newUid();
  const req = s2uc.request({ uid, role: 'PROD', numConn: 1 }).catch((e: unknown) => e);
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  const upd = await s2uc.update({ uid, role: 'PROD', remoteListeners: ['203.0.113.1:7000'] });
  t.deepEqual(upd, { type: 'response', uid, state: 'pending', listeners: [], prodListeners: [] });
  const st = await s2uc.status(uid);
  t.is(st.state, 'pending');
  t.deepEqual(st.remoteListeners, ['203.0.113.1:7000']);
  t.true(st.expiresIn! > 15_000 && st.expiresIn! <= 20_000, String(st.expiresIn));
  t.is(st.stats, undefined);
  await s2uc.release(uid);
  const err = await req;
  t.true(err instanceof SciStreamError && err.code === 'INVALID_UID', 'the waiting REQUEST learns the session was released');
  t.is(s2uc.stateOf(uid), 'released');
});

test('a data path that closes by itself removes its session', async (t) => {
  const { at, ds, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const uid = newUid();
  const [res] = await Promise.all([s2uc.request({ uid, role: 'CONS', numConn: 1 }), s2uc.update({ uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] })]);
  t.is(res.state, 'active');
  await ds.pathOf(uid)!.close();
  await until(() => s2cs.registry.size === 0);
  await rejects(t, s2uc.status(uid), 'INVALID_UID');
});

test('a data-server failure is answered to every waiting message (CONN_ERROR with the endpoint); the uid may be requested again', async (t) => {
  const { at, ds, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, at, 'alice'));
  const uid = newUid();
  ds.failNext = Object.assign(new Error('connect ECONNREFUSED 198.51.100.7:5100'), { code: 'ECONNREFUSED', address: '198.51.100.7', port: 5100 });
  const req = s2uc.request({ uid, role: 'CONS', numConn: 1 });
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  const upd = s2uc.update({ uid, role: 'CONS', remoteListeners: ['198.51.100.7:5100'] });
  for (const p of [req, upd]) {
    const e = await rejects(t, p, 'CONN_ERROR');
    t.is(e.replyCode, 554);
    t.is(e.endpoint, '198.51.100.7:5100');
    t.is(e.origin, 'remote');
    t.false(e.message.includes('ECONNREFUSED'));
  }
  t.is(s2uc.stateOf(uid), 'request-error');
  t.is(s2cs.registry.size, 0);
  ds.failNext = new Error('internal detail /var/lib/secret');
  const again = s2uc.request({ uid, role: 'CONS', numConn: 1 });
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  const upd2 = s2uc.update({ uid, role: 'CONS', remoteListeners: ['198.51.100.7:5100'] });
  const e2 = await rejects(t, again, 'SERVER_ERR');
  t.is(e2.replyCode, 451);
  t.false(e2.message.includes('secret'));
  await upd2.catch(() => undefined);
  const ok = Promise.all([s2uc.request({ uid, role: 'CONS', numConn: 1 }), s2uc.update({ uid, role: 'CONS', remoteListeners: ['198.51.100.7:5100'] })]);
  t.is((await ok)[0].state, 'active');
  await s2uc.release(uid);
});
