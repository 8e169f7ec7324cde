/**
 * Security of the control profile: 538 before TLS and 530 before SASL,
 * per-uid authorisation (another identity's RELEASE / UPDATETARGETS / STATUS /
 * REQUEST → AUTH_ERROR; HELLO by uid possession), policy hooks, and
 * BAD_FORMAT on garbage with the session staying usable.
 */
import test from 'ava';
import { BeepReplyError, connect } from '../../../src/index.js';
import {
  CONTROL_URI, S2ucClient, SciStreamError, appctrlHello, codeForReplyCode, newUid, parseErrorXml,
} from '../../../src/scistream/control/index.js';
import { login, rejects, startS2cs, until } from './harness.js';

test('before TLS the profile is refused with 538, before authentication with 530: AUTH_ERROR', async (t) => {
  const { port } = await startS2cs(t);
  const plain = await connect({ port });
  t.teardown(() => plain.destroy());
  t.false(plain.peerProfiles.includes(CONTROL_URI), 'not offered before TLS');
  const e538 = await rejects(t, new S2ucClient(plain).status(newUid()), 'AUTH_ERROR');
  t.is(e538.replyCode, 538);

  const tlsOnly = await login(t, port);
  const e530 = await rejects(t, new S2ucClient(tlsOnly).request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'AUTH_ERROR');
  t.is(e530.replyCode, 530);
  const raw = await t.throwsAsync(tlsOnly.startChannel(CONTROL_URI));
  t.true(raw instanceof BeepReplyError && raw.replyCode === 530);
  await rejects(t, appctrlHello(tlsOnly, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 'AUTH_ERROR');
});

test("another identity's RELEASE, UPDATETARGETS, STATUS and REQUEST on a uid get AUTH_ERROR (537); the owner's work", async (t) => {
  const { port, ds, s2cs } = await startS2cs(t);
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const bob = new S2ucClient(await login(t, port, 'bob'));
  const uid = newUid();
  const req = alice.request({ uid, role: 'CONS', numConn: 1 });
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  for (const p of [bob.release(uid), bob.status(uid), bob.update({ uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] }), bob.request({ uid, role: 'CONS', numConn: 1 })]) {
    const e = await rejects(t, p, 'AUTH_ERROR');
    t.is(e.replyCode, 537);
  }
  t.is(s2cs.registry.get(uid)?.state, 'pending', "bob's attempts changed nothing");
  await alice.update({ uid, role: 'CONS', remoteListeners: ['127.0.0.1:9'] });
  t.is((await req).state, 'active');
  await rejects(t, bob.release(uid), 'AUTH_ERROR');
  t.is(ds.paths.size, 1);
  await rejects(t, alice.request({ uid, role: 'CONS', numConn: 1 }), 'INVALID_UID'); // already in use
  await alice.release(uid);
  t.is(ds.paths.size, 0);
});

test('HELLO is authorised by uid possession plus authentication: any identity may register, but only one controller per session', async (t) => {
  const { port, s2cs } = await startS2cs(t);
  const alice = new S2ucClient(await login(t, port, 'alice'));
  const app = await login(t, port, 'appctrl');
  const bob = await login(t, port, 'bob');
  const uid = newUid();
  const hello = appctrlHello(app, { uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] });
  await until(() => s2cs.registry.get(uid) !== undefined);
  await rejects(t, appctrlHello(bob, { uid, role: 'PROD', prodListeners: ['127.0.0.1:10'] }), 'AUTH_ERROR');
  // An early UPDATETARGETS by another identity than the later REQUEST's is refused then.
  const uid2 = newUid();
  const bobUpdate = new S2ucClient(bob).update({ uid: uid2, role: 'CONS', remoteListeners: ['127.0.0.1:9'] });
  await until(() => s2cs.registry.get(uid2) !== undefined);
  const aliceReq = alice.request({ uid: uid2, role: 'CONS', numConn: 1 });
  await rejects(t, bobUpdate, 'AUTH_ERROR');
  await alice.update({ uid: uid2, role: 'CONS', remoteListeners: ['127.0.0.1:11'] });
  t.is((await aliceReq).state, 'active');
  t.is((await alice.request({ uid, role: 'PROD', numConn: 1 })).state, 'active');
  await hello;
  await Promise.all([alice.release(uid), alice.release(uid2)]);
});

test('policy hooks: authorizeRequest and authorizeHello returning false give AUTH_ERROR', async (t) => {
  const { port } = await startS2cs(t, { authorizeRequest: (id) => id === 'alice', authorizeHello: (id) => id === 'appctrl' });
  const bob = await login(t, port, 'bob');
  await rejects(t, new S2ucClient(bob).request({ uid: newUid(), role: 'PROD', numConn: 1 }), 'AUTH_ERROR');
  await rejects(t, appctrlHello(bob, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 'AUTH_ERROR');
});

test('garbage gets BAD_FORMAT (500 not XML, 501 bad field), unknown elements NOT_IMPLEMENTED; the channel stays usable', async (t) => {
  const { port } = await startS2cs(t);
  const session = await login(t, port, 'alice');
  const ch = await session.startChannel(CONTROL_URI);
  const errorOf = async (body: string | Uint8Array): Promise<SciStreamError> => {
    const e = await t.throwsAsync(ch.request(body));
    t.true(e instanceof BeepReplyError, String(e));
    const parsed = parseErrorXml((e as BeepReplyError).diagnostic, codeForReplyCode);
    t.truthy(parsed, (e as BeepReplyError).diagnostic);
    return parsed!;
  };
  const cases: [string | Uint8Array, SciStreamError['code'], number][] = [
    ['garbage', 'BAD_FORMAT', 500],
    [Buffer.from([0xff, 0x00, 0x3c, 0x3e]), 'BAD_FORMAT', 500],
    ['', 'BAD_FORMAT', 500],
    ['<!DOCTYPE x [<!ENTITY a "b">]><status uid="&a;"/>', 'BAD_FORMAT', 500],
    ['<status uid="' + 'a'.repeat(32) + '">' + 'x'.repeat(70_000) + '</status>', 'BAD_FORMAT', 500],
    ["<request uid='" + newUid() + "' role='PROD'/>", 'BAD_FORMAT', 501],
    ["<request uid='" + newUid() + "' role='PROD' num_conn='1' version='7'/>", 'VERSION_ERR', 504],
    ["<frobnicate uid='" + newUid() + "'/>", 'NOT_IMPLEMENTED', 504],
    ["<response uid='" + newUid() + "' state='active'/>", 'BAD_FORMAT', 501],
    ["<hello uid='" + newUid() + "' role='PROD'/>", 'BAD_FORMAT', 501],
  ];
  for (const [body, code, reply] of cases) {
    const e = await errorOf(body);
    t.is(e.code, code, String(body).slice(0, 40));
    t.is(e.replyCode, reply, String(body).slice(0, 40));
  }
  // Still usable: a well-formed STATUS on an unknown uid gets INVALID_UID.
  t.is((await errorOf(`<status uid='${newUid()}'/>`)).code, 'INVALID_UID');
  t.is(session.core.state, 'open');
});
