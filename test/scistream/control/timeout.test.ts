/**
 * Timeouts: a REQUEST without its HELLO / UPDATETARGETS gets TIMEOUT and its
 * session is removed with every resource freed (quota, ports of a path opened
 * too late); a HELLO or UPDATETARGETS whose REQUEST never comes gets
 * INVALID_UID; an unknown uid gets INVALID_UID at once where it can.
 */
import test from 'ava';
import { S2ucClient, appctrlHello, newUid } from '../../../src/scistream/control/index.js';
import { portReleased, login, rejects, sleep, startS2cs, until } from './harness.js';

test('REQUEST without HELLO: TIMEOUT after the rendezvous timeout; the session is removed and its quota freed', async (t) => {
  const { port, ds, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 300, maxSessionsPerIdentity: 1 });
  const s2uc = new S2ucClient(await login(t, port, 'alice'));
  const uid = newUid();
  const started = Date.now();
  const e = await rejects(t, s2uc.request({ uid, role: 'PROD', numConn: 1 }), 'TIMEOUT');
  t.true(Date.now() - started >= 280, 'not before the timeout');
  t.is(e.replyCode, 451);
  t.regex(e.message, /no HELLO/);
  t.is(s2uc.stateOf(uid), 'request-error');
  t.is(s2cs.registry.size, 0);
  t.is(ds.all.length, 0, 'no data path was opened');
  // The quota (1 session) is free again; the uid was never used, so it may be requested again.
  const again = s2uc.request({ uid, role: 'CONS', numConn: 1 });
  await rejects(t, again, 'TIMEOUT');
});

test('CONS REQUEST without UPDATETARGETS: TIMEOUT', async (t) => {
  const { port, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 200 });
  const s2uc = new S2ucClient(await login(t, port, 'alice'));
  const e = await rejects(t, s2uc.request({ uid: newUid(), role: 'CONS', numConn: 1 }), 'TIMEOUT');
  t.regex(e.message, /no UPDATETARGETS/);
  t.is(s2cs.registry.size, 0);
});

test('a data path opened after the timeout is closed at once: its port is freed', async (t) => {
  const { port, ds, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 300 });
  const s2uc = new S2ucClient(await login(t, port, 'alice'));
  const app = await login(t, port, 'appctrl');
  ds.delayMs = 600;
  const uid = newUid();
  // HELLO first, so the REQUEST completes the rendezvous on arrival and the deadline runs out in setup.
  const hello = appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] });
  await until(() => s2cs.registry.get(uid) !== undefined);
  const req = s2uc.request({ uid, role: 'PROD', numConn: 1 });
  const e = await rejects(t, req, 'TIMEOUT');
  t.regex(e.message, /not set up/);
  await rejects(t, hello, 'TIMEOUT');
  await until(() => s2cs.registry.size === 0 && ds.all.length === 1);
  const late = ds.all[0]!;
  await until(() => late.closeCalls === 1);
  t.is(ds.paths.size, 0);
  t.true(await portReleased(late.port));
});

test('HELLO and UPDATETARGETS whose REQUEST never comes: INVALID_UID after the timeout, nothing left behind', async (t) => {
  const { port, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 250 });
  const s2uc = new S2ucClient(await login(t, port, 'alice'));
  const app = await login(t, port, 'appctrl');
  const h = await rejects(t, appctrlHello(app, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 'INVALID_UID');
  t.is(h.replyCode, 550);
  t.regex(h.message, /no REQUEST/);
  await rejects(t, s2uc.update({ uid: newUid(), role: 'CONS', remoteListeners: ['127.0.0.1:9'] }), 'INVALID_UID');
  t.is(s2cs.registry.size, 0);
});

test('unknown uid: RELEASE, STATUS and a PROD UPDATETARGETS get INVALID_UID at once; a malformed uid too', async (t) => {
  const { port } = await startS2cs(t);
  const session = await login(t, port, 'alice');
  const s2uc = new S2ucClient(session);
  const uid = newUid();
  const started = Date.now();
  await rejects(t, s2uc.release(uid), 'INVALID_UID');
  await rejects(t, s2uc.status(uid), 'INVALID_UID');
  await rejects(t, s2uc.update({ uid, role: 'PROD', remoteListeners: ['127.0.0.1:9'] }), 'INVALID_UID');
  t.true(Date.now() - started < 5000);
  // A uid in another syntax never leaves the client…
  await rejects(t, s2uc.status('8a5c3d2e-1f00-11ee-be56-0242ac120002'), 'INVALID_UID');
  // …and the server refuses it too.
  const ch = await session.startChannel('urn:beepstream:scistream:control:1');
  const err = await t.throwsAsync(ch.request(`<status uid='8a5c3d2e-1f00-11ee-be56-0242ac120002'/>`));
  t.regex((err as unknown as { diagnostic: string }).diagnostic, /^<error code='INVALID_UID' reply='550'>/);
  await sleep(0);
});
