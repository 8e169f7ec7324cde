/**
 * Full stack, real components: the S2CS started with `startS2cs` takes
 * control messages only over TLS (538 before) from an authenticated peer
 * (530 before SASL); a wrong password or an unverifiable server fails the
 * login; the S2DS's inbound listener of a live session is TLS-only as well.
 * None of it creates a session or disturbs one.
 */
import test, { type ExecutionContext } from 'ava';
import { BeepReplyError, connect, scramSha256Client, startTls, authenticate, TLS_URI, type Session } from '../../src/index.js';
import { CONTROL_URI, S2ucClient, SciStreamError, appctrlHello, newUid } from '../../src/scistream/control/index.js';
import { DATA_URI, DATA_CONTROL_URI } from '../../src/scistream/data/index.js';
import { connectControl } from '../../src/scistream/roles.js';
import {
  MiB, PASSWORD, checkStream, consumerStream, hostPort, login, openSession, pki, producerApp, producerEnd, startFacilities, within,
} from './roles-harness.js';

/** A raw BEEP connection to `address` (no TLS, no SASL); destroyed at teardown. */
async function raw(t: ExecutionContext, address: string): Promise<Session> {
  const { host, port } = hostPort(address);
  const s = await within(connect({ host, port, timeout: 10_000 }), 15_000, `connect to ${address}`);
  t.teardown(() => s.destroy());
  return s;
}

async function refused(t: ExecutionContext, p: Promise<unknown>, replyCode: number, what: string): Promise<void> {
  const err = await t.throwsAsync(p, undefined, what);
  if (err instanceof SciStreamError) {
    t.is(err.code, 'AUTH_ERROR', `${what}: ${err.message}`);
    t.is(err.replyCode, replyCode, what);
  } else {
    t.true(err instanceof BeepReplyError, `${what}: ${String(err)}`);
    t.is((err as BeepReplyError).replyCode, replyCode, what);
  }
}

test.serial('control without TLS: the control profile is not offered and its start is refused with 538; a SASL identity from before TLS does not carry over', async (t) => {
  t.timeout(180_000);
  const { prod } = await startFacilities(t);
  const plain = await raw(t, prod.address);
  t.true(plain.peerProfiles.includes(TLS_URI), 'the greeting offers TLS');
  t.false(plain.peerProfiles.includes(CONTROL_URI), 'the control profile is not offered before TLS');
  t.false(plain.peerProfiles.some((u) => /SASL\/PLAIN$/.test(u)), 'PLAIN is not offered before TLS');
  await refused(t, plain.startChannel(CONTROL_URI), 538, 'raw start of the control profile');
  const s2uc = new S2ucClient(plain);
  await refused(t, s2uc.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 538, 'REQUEST');
  await refused(t, s2uc.status(newUid()), 538, 'STATUS');
  await refused(t, s2uc.release(newUid()), 538, 'RELEASE');
  await refused(t, appctrlHello(plain, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 538, 'HELLO');
  // SASL tuning profiles are offered before TLS (spec/sasl.md), but an identity established in clear
  // does not survive the TLS tuning reset: the control profile still wants authentication (530).
  const early = await raw(t, prod.address);
  await within(authenticate(early, scramSha256Client({ username: 'scientist', password: PASSWORD })), 15_000, 'SCRAM in clear');
  await refused(t, early.startChannel(CONTROL_URI), 538, 'authenticated but no TLS');
  await within(startTls(early, { ca: pki.ca, serverName: 'localhost' }), 15_000, 'TLS after SASL');
  t.true(early.peerProfiles.includes(CONTROL_URI), 'offered once TLS is in place');
  await refused(t, new S2ucClient(early).status(newUid()), 530, 'identity from before TLS does not carry over');
  t.is(prod.control.registry.size, 0);
  t.is(prod.data.paths.length, 0);
});

test.serial('control with TLS but without SASL: refused with 530; a wrong password or an unverified server fails the login', async (t) => {
  t.timeout(180_000);
  const { prod } = await startFacilities(t);
  const tlsOnly = await raw(t, prod.address);
  await within(startTls(tlsOnly, { ca: pki.ca, serverName: 'localhost' }), 15_000, 'TLS');
  t.true(tlsOnly.core.security.tls, 'TLS in place');
  await refused(t, tlsOnly.startChannel(CONTROL_URI), 530, 'raw start of the control profile');
  const s2uc = new S2ucClient(tlsOnly);
  await refused(t, s2uc.request({ uid: newUid(), role: 'PROD', numConn: 1 }), 530, 'REQUEST');
  await refused(t, s2uc.update({ uid: newUid(), role: 'CONS', remoteListeners: ['127.0.0.1:9'] }), 530, 'UPDATETARGETS');
  await refused(t, s2uc.status(newUid()), 530, 'STATUS');
  await refused(t, appctrlHello(tlsOnly, { uid: newUid(), role: 'PROD', prodListeners: ['127.0.0.1:9'] }), 530, 'HELLO');

  const { host, port } = hostPort(prod.address);
  const badPassword = await t.throwsAsync(
    within(connectControl({ host, port, ca: pki.ca, serverName: 'localhost', sasl: scramSha256Client({ username: 'scientist', password: `${PASSWORD}x` }) }), 15_000, 'login'),
  );
  t.true(badPassword instanceof BeepReplyError && badPassword.replyCode === 535, `wrong password: ${String(badPassword)}`);
  const unknownUser = await t.throwsAsync(
    within(connectControl({ host, port, ca: pki.ca, serverName: 'localhost', sasl: scramSha256Client({ username: 'nobody', password: PASSWORD }) }), 15_000, 'login'),
  );
  t.true(unknownUser instanceof BeepReplyError && unknownUser.replyCode === 535, `unknown user: ${String(unknownUser)}`);
  // The server must prove its name: a certificate for localhost is not one for another name.
  await t.throwsAsync(
    within(connectControl({ host, port, ca: pki.ca, serverName: 's2cs.example.org', sasl: scramSha256Client({ username: 'scientist', password: PASSWORD }) }), 15_000, 'login'),
    undefined,
    'server name not in the certificate',
  );
  // Nor without the CA that issued it (the system's trust store does not know the test CA).
  await t.throwsAsync(
    within(connectControl({ host, port, serverName: 'localhost', sasl: scramSha256Client({ username: 'scientist', password: PASSWORD }) }), 15_000, 'login'),
    undefined,
    'certificate not verified',
  );
  t.is(prod.control.registry.size, 0);
  t.is(prod.data.paths.length, 0);
  // The right credentials work.
  const ok = await login(t, prod);
  await t.throwsAsync(ok.status(newUid()), { instanceOf: SciStreamError, message: /unknown|uid/i });
});

test.serial("the data server's inbound listener of a live session is TLS-only (538), and probing it does not disturb the session", async (t) => {
  t.timeout(180_000);
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, MiB);
  const s = await openSession({ prodU, consU, appctrl }, { uid: newUid(), numConn: 1, producer: producer.address });
  const probe = await raw(t, s.prod.listeners[0] as string);
  t.deepEqual(probe.peerProfiles, [TLS_URI], 'the inbound receiver offers TLS only');
  await refused(t, probe.startChannel(DATA_URI), 538, 'data profile before TLS');
  await refused(t, probe.startChannel(DATA_CONTROL_URI), 538, 'data-control profile before TLS');
  probe.destroy();
  t.is(producer.ends.length, 0, 'the producer application was never connected');
  const c = await consumerStream(t, s.listeners[0] as string, 0, 0, MiB);
  const p = await producerEnd(producer, 0, 0);
  await within(Promise.all([c.closed, p.closed]), 30_000, 'transfer');
  checkStream(t, c, p, MiB, MiB);
  t.is((await consU.release(s.uid)).state, 'closed');
  t.is((await prodU.release(s.uid)).state, 'closed');
});
