/**
 * The client API: the channel pool (one waiting exchange per channel, at most
 * `maxChannels`, later calls queued), aborting a call, HELLO over the S2UC's
 * own connection, and a reply for another uid being refused.
 */
import test from 'ava';
import { BeepError, ErrorCodes, defineProfile, createServer, connect } from '../../../src/index.js';
import { CONTROL_URI, S2ucClient, newUid } from '../../../src/scistream/control/index.js';
import { login, rejects, sleep, startS2cs, until } from './harness.js';

test('pool: at most maxChannels exchanges at once; later calls wait for a free channel and then proceed', async (t) => {
  const { port, s2cs } = await startS2cs(t);
  const session = await login(t, port, 'alice');
  const s2uc = new S2ucClient(session, { maxChannels: 2 });
  const app = new S2ucClient(await login(t, port, 'appctrl'));
  const uids = [newUid(), newUid(), newUid(), newUid()];
  const reqs = uids.map((uid) => s2uc.request({ uid, role: 'PROD', numConn: 1 }));
  await until(() => s2cs.registry.size === 2);
  await sleep(100);
  t.is(s2cs.registry.size, 2, 'two exchanges in flight, two queued');
  t.true(session.channels.size <= 3, 'channel 0 and two control channels');
  const waitingUids = uids.filter((u) => s2cs.registry.get(u) !== undefined);
  await Promise.all(waitingUids.map((uid) => app.hello({ uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] })));
  await until(() => s2cs.registry.size === 4);
  const rest = uids.filter((u) => !waitingUids.includes(u));
  await Promise.all(rest.map((uid) => app.hello({ uid, role: 'PROD', prodListeners: ['127.0.0.1:9'] })));
  const responses = await Promise.all(reqs);
  t.deepEqual(responses.map((r) => r.uid), uids);
  t.true(session.channels.size <= 3);
  await Promise.all(uids.map((uid) => s2uc.release(uid)));
  await s2uc.close();
});

test('an aborted call rejects with BEEP_ERR_ABORTED; the session can still be released from another channel', async (t) => {
  const { port, s2cs } = await startS2cs(t);
  const s2uc = new S2ucClient(await login(t, port, 'alice'));
  const uid = newUid();
  const ac = new AbortController();
  const req = s2uc.request({ uid, role: 'PROD', numConn: 1 }, { signal: ac.signal });
  await until(() => s2cs.registry.get(uid)?.state === 'pending');
  ac.abort();
  const err = await t.throwsAsync(req);
  t.true(err instanceof BeepError && err.code === ErrorCodes.ABORTED, String(err));
  await s2uc.release(uid);
  t.is(s2cs.registry.size, 0);
  const pre = new AbortController();
  pre.abort();
  const e2 = await t.throwsAsync(s2uc.status(uid, { signal: pre.signal }));
  t.true(e2 instanceof BeepError && e2.code === ErrorCodes.ABORTED);
});

test('a reply for another uid, or of the wrong kind, is refused as BAD_FORMAT', async (t) => {
  const other = newUid();
  const liar = defineProfile({
    uri: CONTROL_URI,
    async onMessage(msg, res) {
      const body = await msg.text();
      if (body.startsWith('<status')) await res.reply(`<statusresponse uid='${other}' role='PROD' state='active' num_conn='1' keep='false'/>`);
      else await res.reply(`<appresponse uid='${other}'><message>x</message></appresponse>`);
    },
  });
  const server = createServer({ profiles: [liar] });
  const { port } = await server.listen(0, '127.0.0.1');
  const session = await connect({ port });
  t.teardown(async () => {
    session.destroy();
    await server.close(100);
  });
  const s2uc = new S2ucClient(session);
  const e1 = await rejects(t, s2uc.status(newUid()), 'BAD_FORMAT');
  t.regex(e1.message, /another uid/);
  const e2 = await rejects(t, s2uc.release(newUid()), 'BAD_FORMAT');
  t.regex(e2.message, /expected <response>/);
  t.is(e2.origin, 'remote');
});
