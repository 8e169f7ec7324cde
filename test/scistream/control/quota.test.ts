/**
 * Quotas and limits: sessions per identity (RATE_LIMIT + retry_after), sessions
 * in all (NO_RESOURCE + retry_after), num_conn and rate caps (NO_RESOURCE),
 * the REQUEST rate (RATE_LIMIT with the exact retry_after), early
 * registrations, `keep` disabled, shutdown (UNAVAILABLE).
 */
import test from 'ava';
import { S2ucClient, appctrlHello, newUid } from '../../../src/scistream/control/index.js';
import { login, rejects, startS2cs, until } from './harness.js';
import { MAX_CONNECTIONS } from '../../../src/scistream/data/index.js';

test('sessions per identity: RATE_LIMIT (454) with retry_after; other identities unaffected; freed by RELEASE', async (t) => {
  const { port, s2cs } = await startS2cs(t, { maxSessionsPerIdentity: 2, retryAfter: 5 });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const bob = new S2ucClient(await login(t, port, 'bob'));
  const [u1, u2, u3] = [newUid(), newUid(), newUid()];
  const waiting = [alice.request({ uid: u1, role: 'PROD', numConn: 1 }).catch(() => undefined), alice.request({ uid: u2, role: 'PROD', numConn: 1 }).catch(() => undefined)];
  await until(() => s2cs.registry.size === 2);
  const e = await rejects(t, alice.request({ uid: u3, role: 'PROD', numConn: 1 }), 'RATE_LIMIT');
  t.is(e.replyCode, 454);
  t.is(e.retryAfter, 5);
  t.regex(e.details ?? '', /at most 2 sessions/);
  const b = bob.request({ uid: u3, role: 'PROD', numConn: 1 }).catch(() => undefined);
  await until(() => s2cs.registry.size === 3);
  await alice.release(u1);
  const u4 = newUid();
  const again = alice.request({ uid: u4, role: 'PROD', numConn: 1 }).catch(() => undefined);
  await until(() => s2cs.registry.get(u4)?.state === 'pending');
  await Promise.all([alice.release(u2), alice.release(u4), bob.release(u3)]);
  await Promise.all([...waiting, b, again]);
  t.is(s2cs.registry.size, 0);
});

test('sessions in all: NO_RESOURCE (450) with retry_after', async (t) => {
  const { port, s2cs } = await startS2cs(t, { maxSessions: 1, retryAfter: 9 });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const bob = new S2ucClient(await login(t, port, 'bob'));
  const uid = newUid();
  const w = alice.request({ uid, role: 'CONS', numConn: 1 }).catch(() => undefined);
  await until(() => s2cs.registry.size === 1);
  const e = await rejects(t, bob.request({ uid: newUid(), role: 'CONS', numConn: 1 }), 'NO_RESOURCE');
  t.is(e.replyCode, 450);
  t.is(e.retryAfter, 9);
  await alice.release(uid);
  await w;
});

test('num_conn above the per-session maximum and rate above the cap: NO_RESOURCE with details', async (t) => {
  const { port, s2cs } = await startS2cs(t, { maxConnPerSession: 8, maxRate: 1000 });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const e = await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 9 }), 'NO_RESOURCE');
  t.regex(e.details ?? '', /at most 8 connections/);
  t.is(e.retryAfter, undefined);
  const r = await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 8, rate: 1001 }), 'NO_RESOURCE');
  t.regex(r.details ?? '', /at most 1000 octets per second/);
  t.is(s2cs.registry.size, 0);
});

test('striping beyond what the data plane allows: NO_RESOURCE naming the limit, not a SERVER_ERR from the S2DS', async (t) => {
  const { port, s2cs } = await startS2cs(t, { maxConnPerSession: 64 });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const e = await rejects(t, alice.request({ uid: newUid(), role: 'CONS', numConn: 32, connections: MAX_CONNECTIONS + 1 }), 'NO_RESOURCE');
  t.regex(e.details ?? '', new RegExp(`at most ${MAX_CONNECTIONS} TCP connections`));
  t.is(s2cs.registry.size, 0);
});

test('REQUEST rate per identity: a token bucket; when empty RATE_LIMIT with the time until the next token', async (t) => {
  const { port } = await startS2cs(t, { requestRate: { burst: 2, perSecond: 0.5 }, rendezvousTimeoutMs: 100 });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const bob = new S2ucClient(await login(t, port, 'bob'));
  await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'TIMEOUT');
  await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'TIMEOUT');
  const e = await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'RATE_LIMIT');
  t.true(e.retryAfter === 1 || e.retryAfter === 2, String(e.retryAfter));
  await rejects(t, bob.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'TIMEOUT');
});

test('early registrations are bounded per identity (RATE_LIMIT) and in all (NO_RESOURCE)', async (t) => {
  {
    const { port, s2cs } = await startS2cs(t, { maxEarlyPerIdentity: 1, rendezvousTimeoutMs: 5000 });
    const app = await login(t, port, 'appctrl');
    const first = appctrlHello(app, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }).catch(() => undefined);
    await until(() => s2cs.registry.size === 1);
    await rejects(t, appctrlHello(app, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 'RATE_LIMIT');
    app.destroy();
    await first;
    await until(() => s2cs.registry.size === 0);
  }
  {
    const { port, s2cs } = await startS2cs(t, { maxEarly: 1, rendezvousTimeoutMs: 5000 });
    const app = await login(t, port, 'appctrl');
    const bob = new S2ucClient(await login(t, port, 'bob'));
    const first = appctrlHello(app, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }).catch(() => undefined);
    await until(() => s2cs.registry.size === 1);
    await rejects(t, bob.update({ uid: newUid(), role: 'CONS', remoteListeners: ['127.0.0.1:9'] }), 'NO_RESOURCE');
    app.destroy();
    await first;
  }
});

test('keep disabled: NOT_IMPLEMENTED; shutting down: waiting messages and new ones get UNAVAILABLE (421)', async (t) => {
  const { port, ds, s2cs } = await startS2cs(t, { allowKeep: false });
  const alice = new S2ucClient(await login(t, port, 'alice'));
  await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 1, keep: true }), 'NOT_IMPLEMENTED');
  const active = newUid();
  await Promise.all([alice.request({ uid: active, role: 'CONS', numConn: 1 }), alice.update({ uid: active, role: 'CONS', remoteListeners: ['127.0.0.1:9'] })]);
  const waiting = alice.request({ uid: newUid(), role: 'PROD', numConn: 1 });
  await until(() => s2cs.registry.size === 2);
  await s2cs.close();
  await rejects(t, waiting, 'UNAVAILABLE');
  t.is(ds.paths.size, 0, 'active paths closed');
  const e = await rejects(t, alice.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'UNAVAILABLE');
  t.is(e.replyCode, 421);
  t.is(e.retryAfter, 30);
});
