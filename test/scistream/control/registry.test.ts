/**
 * The session registry without BEEP, for the cases the wire tests cannot
 * time precisely: RELEASE while the data path is being opened, concurrent
 * RELEASEs, the token bucket against a fake clock, the bounded memory of used
 * uids, role mismatches between early messages and the REQUEST, a failing
 * path close, and events never carrying the whole uid.
 */
import test from 'ava';
import { SessionRegistry, SciStreamError, newUid, sessionTag, type ControlEvent, type RegistryOptions } from '../../../src/scistream/control/index.js';
import { TestDataServer, portReleased, rejects } from './harness.js';

const alice = { identity: 'alice', connection: {} };
const app = { identity: 'appctrl', connection: {} };

function registry(options: Partial<RegistryOptions> = {}): { reg: SessionRegistry; ds: TestDataServer; events: ControlEvent[] } {
  const ds = new TestDataServer();
  const events: ControlEvent[] = [];
  const reg = new SessionRegistry({ dataServer: ds, onEvent: (e) => events.push(e), ...options });
  return { reg, ds, events };
}

test('RELEASE while the path is being opened waits for it, closes it and frees its port; a second RELEASE shares the outcome', async (t) => {
  const { reg, ds } = registry();
  ds.delayMs = 200;
  const uid = newUid();
  const req = reg.request(alice, { type: 'request', uid, role: 'CONS', numConn: 1 });
  const upd = reg.update(alice, { type: 'updatetargets', uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] });
  t.is(reg.get(uid)?.state, 'setup');
  const [r1, r2] = await Promise.all([reg.release(alice, uid), reg.release(alice, uid)]);
  t.deepEqual(r1, r2);
  await rejects(t, req, 'INVALID_UID');
  await rejects(t, upd, 'INVALID_UID');
  t.is(ds.all.length, 1);
  t.is(ds.all[0]!.closeCalls, 1);
  t.is(ds.paths.size, 0);
  t.true(await portReleased(ds.all[0]!.port));
  t.is(reg.size, 0);
});

test('the REQUEST rate bucket refills at its rate: retry_after is the time to the next token', async (t) => {
  let now = 1_000_000;
  const { reg } = registry({ requestRate: { burst: 3, perSecond: 0.25 }, now: () => now, rendezvousTimeoutMs: 60_000 });
  for (let i = 0; i < 3; i++) void reg.request(alice, { type: 'request', uid: newUid(), role: 'PROD', numConn: 1 }).catch(() => undefined);
  const e = await rejects(t, reg.request(alice, { type: 'request', uid: newUid(), role: 'PROD', numConn: 1 }), 'RATE_LIMIT');
  t.is(e.retryAfter, 4);
  now += 3000;
  t.is((await rejects(t, reg.request(alice, { type: 'request', uid: newUid(), role: 'PROD', numConn: 1 }), 'RATE_LIMIT')).retryAfter, 1);
  now += 1000;
  void reg.request(alice, { type: 'request', uid: newUid(), role: 'PROD', numConn: 1 }).catch(() => undefined);
  t.is(reg.size, 4);
  await reg.close();
});

test('used uids are remembered up to rememberUids, oldest forgotten first', async (t) => {
  const { reg } = registry({ rememberUids: 2 });
  const uids = [newUid(), newUid(), newUid()];
  for (const uid of uids) {
    const p = reg.request(alice, { type: 'request', uid, role: 'CONS', numConn: 1 });
    await reg.update(alice, { type: 'updatetargets', uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] });
    await p;
    await reg.release(alice, uid);
  }
  await rejects(t, reg.request(alice, { type: 'request', uid: uids[2]!, role: 'CONS', numConn: 1 }), 'INVALID_UID');
  await rejects(t, reg.hello(app, { type: 'hello', uid: uids[1]!, role: 'CONS', prodListeners: [] }), 'INVALID_UID');
  const again = reg.request(alice, { type: 'request', uid: uids[0]!, role: 'CONS', numConn: 1 });
  t.is(reg.get(uids[0]!)?.state, 'pending', 'the oldest is forgotten');
  await reg.close();
  await rejects(t, again, 'UNAVAILABLE');
});

test('an early HELLO of the wrong role is refused when the REQUEST comes, which then waits for a right one', async (t) => {
  const { reg } = registry();
  const uid = newUid();
  const hello = reg.hello(app, { type: 'hello', uid, role: 'CONS', prodListeners: [] });
  const req = reg.request(alice, { type: 'request', uid, role: 'PROD', numConn: 1 });
  await rejects(t, hello, 'BAD_FORMAT');
  t.is(reg.get(uid)?.state, 'pending');
  const good = await reg.hello(app, { type: 'hello', uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] });
  t.is((await req).state, 'active');
  t.deepEqual(good.listeners, (await req).listeners);
  await reg.release(alice, uid);
});

test('a data path whose close fails is still forgotten; events carry only the non-secret tag derived from the uid', async (t) => {
  const { reg, ds, events } = registry();
  const uid = newUid();
  const p = reg.request(alice, { type: 'request', uid, role: 'PROD', numConn: 2 });
  await reg.hello(app, { type: 'hello', uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] });
  await p;
  const path = ds.pathOf(uid)!;
  const close = path.close.bind(path);
  path.close = async () => {
    await close();
    throw new Error('close failed');
  };
  await reg.release(alice, uid);
  t.is(reg.size, 0);
  t.deepEqual(events.map((e) => e.type), ['requested', 'hello', 'setup', 'active', 'failed', 'released']);
  for (const e of events) {
    t.is(e.tag, sessionTag(uid));
    t.regex(e.tag, /^[0-9a-f]{12}$/);
    t.false(uid.includes(e.tag), 'the tag is no substring of the uid');
    t.false(JSON.stringify(e).includes(uid));
  }
  t.true(events.find((e) => e.type === 'failed')?.error instanceof SciStreamError);
});

test('detach: keep sessions stay, others go; a grace timer is cancelled by the owner coming back', async (t) => {
  const { reg } = registry({ disconnectGraceMs: 100 });
  const conn1 = {};
  const ctx1 = { identity: 'alice', connection: conn1 };
  const [kept, graced] = [newUid(), newUid()];
  const k = reg.request(ctx1, { type: 'request', uid: kept, role: 'PROD', numConn: 1, keep: true }).catch((e: unknown) => e);
  const g = reg.request(ctx1, { type: 'request', uid: graced, role: 'PROD', numConn: 1 }).catch((e: unknown) => e);
  reg.detach(conn1);
  t.true((await k) instanceof SciStreamError, 'the waiting REQUEST cannot be answered any more');
  await g;
  t.is(reg.get(kept)?.attached, false);
  t.is(reg.get(graced)?.attached, false);
  await new Promise((r) => setTimeout(r, 250));
  t.is(reg.get(graced), undefined);
  t.is(reg.get(kept)?.state, 'pending');
  const ctx2 = { identity: 'alice', connection: {} };
  t.is(reg.status(ctx2, kept).state, 'pending');
  t.true(reg.get(kept)?.attached);
  await reg.close();
});

test('the test helper portReleased is false while a socket of ours listens on the port, true once it is closed', async (t) => {
  const ds = new TestDataServer();
  const path = await ds.openInbound({ uid: newUid(), targets: ['127.0.0.1:9'], numConn: 1 });
  const port = Number(path.listeners[0]!.split(':')[1]);
  t.false(await portReleased(port));
  await path.close();
  t.true(await portReleased(port));
});

test('a data server returning listeners that are not host:port endpoints: SERVER_ERR, and its path is closed', async (t) => {
  let closed = 0;
  const bad = {
    listeners: ['::1:5000'],
    stats: () => ({ connections: 0, open: 0, bytesToProducer: 0, bytesToConsumer: 0 }),
    close: async () => void closed++,
    closed: new Promise<void>(() => undefined),
  };
  const reg = new SessionRegistry({ dataServer: { openInbound: async () => bad, openOutbound: async () => bad, close: async () => undefined } });
  const uid = newUid();
  const req = reg.request(alice, { type: 'request', uid, role: 'CONS', numConn: 1 });
  const upd = reg.update(alice, { type: 'updatetargets', uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] });
  const e = await rejects(t, req, 'SERVER_ERR');
  t.false(e.message.includes('::1'));
  await rejects(t, upd, 'SERVER_ERR');
  t.is(closed, 1);
  t.is(reg.size, 0);
});
