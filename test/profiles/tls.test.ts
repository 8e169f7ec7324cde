/**
 * The TLS tuning profile over real sockets and real TLS, with certificates
 * generated for the run.
 */
import test, { type ExecutionContext } from 'ava';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { BeepError, BeepReplyError, ErrorCodes, connect, createServer, echoProfile, ECHO_URI, startTls, tlsProfile, TLS_URI, defineProfile, type ServerOptions, type Session, type TlsServerOptions } from '../../src/index.js';
import { parseTlsElement } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { listenForTest } from '../helpers/transport.js';

// Waits are bounds, not measurements: never under 30 s (a loaded machine is slow, not wrong).
const MIN_BOUND_MS = 30_000;

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = Math.max(ms, MIN_BOUND_MS);
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), bound)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function setup(t: ExecutionContext, tlsOptions: TlsServerOptions, extra: Partial<ServerOptions> = {}) {
  t.timeout(120_000);
  const server = createServer({ profiles: [tlsProfile(tlsOptions), echoProfile], ...extra });
  const at = await listenForTest(t, server);
  const peers: Session[] = [];
  server.on('session', (s) => peers.push(s));
  const client = await within(connect({ ...at }), 5000, 'connect');
  t.teardown(async () => {
    client.destroy();
    await server.close(200).catch(() => undefined);
  });
  return { server, client, peers, at };
}

const pki = testPki();
const certServer: TlsServerOptions = { cert: pki.serverCert, key: pki.serverKey };

test('parseTlsElement reads ready, proceed and error, liberally quoted, and refuses DOCTYPE', (t) => {
  t.deepEqual(parseTlsElement('<ready />'), { kind: 'ready', version: '1' });
  t.deepEqual(parseTlsElement('<ready version="1"/>'), { kind: 'ready', version: '1' });
  t.deepEqual(parseTlsElement(Buffer.from("<proceed\n/>")), { kind: 'proceed', version: '1' });
  t.deepEqual(parseTlsElement("<error code='454'>busy</error>"), { kind: 'error', code: 454, diagnostic: 'busy' });
  t.throws(() => parseTlsElement('<!DOCTYPE x [<!ENTITY a "b">]><ready/>'));
  t.throws(() => parseTlsElement('<bogus/>'));
  t.throws(() => parseTlsElement('<ready'));
});

test('certificate TLS: tuning reset discards old channels, restarts numbering, greets again without TLS, and data flows', async (t) => {
  const { client, peers } = await setup(t, certServer);
  t.true(client.peerProfiles.includes(TLS_URI), 'TLS offered before tuning');
  const before = await client.startChannel(ECHO_URI);
  t.is(before.number, 1);
  const closedWith = new Promise<Error | undefined>((r) => before.once('close', r));
  await within(startTls(client, { ca: pki.ca, serverName: 'localhost' }), 10000, 'startTls');
  const e = await within(closedWith, 5000, 'old channel closed');
  t.true(e instanceof BeepError && e.code === ErrorCodes.SESSION_CLOSED, 'the old channel went with the reset');
  t.is(before.state, 'closed');
  t.true(client.core.security.tls);
  t.regex(client.core.security.protocol ?? '', /^TLSv1\.[23]$/);
  t.regex(client.core.security.cipher ?? '', /GCM|CHACHA20/);
  t.false(client.peerProfiles.includes(TLS_URI), 'the new greeting lists no TLS profile');
  t.true(client.peerProfiles.includes(ECHO_URI));
  const after = await client.startChannel(ECHO_URI);
  t.is(after.number, 1, 'channel numbering restarted');
  const payload = randomBytes(300_000);
  t.true((await (await after.request(payload)).bytes()).equals(payload));
  t.true(peers[0]?.core.security.tls, 'the listener side is TLS too');
  await client.close();
});

test('<ready/> as a MSG on an open TLS channel also tunes', async (t) => {
  const { client } = await setup(t, certServer);
  await within(startTls(client, { ca: pki.ca, serverName: 'localhost', readyAsMessage: true }), 10000, 'startTls');
  t.true(client.core.security.tls);
  const ch = await client.startChannel(ECHO_URI);
  t.is(await (await ch.request('over tls')).text(), 'over tls');
});

test('a server certificate for another name is refused and the session ends', async (t) => {
  const { client } = await setup(t, certServer);
  const err = await t.throwsAsync(within(startTls(client, { ca: pki.ca, serverName: 'not-localhost.example' }), 10000, 'startTls'));
  t.true(err instanceof BeepError && err.code === ErrorCodes.TRANSPORT, String(err));
  t.is(client.core.state, 'closed');
});

test('a server certificate from an untrusted CA is refused', async (t) => {
  const { client } = await setup(t, certServer);
  const err = await t.throwsAsync(within(startTls(client, { ca: pki.otherCa, serverName: 'localhost' }), 10000, 'startTls'));
  t.true(err instanceof BeepError && err.code === ErrorCodes.TRANSPORT);
});

test('client certificates: required and verified; missing or wrong ones are refused; the CN is visible', async (t) => {
  const opts: TlsServerOptions = { ...certServer, ca: pki.ca };
  {
    const { client } = await setup(t, opts);
    await t.throwsAsync(within(startTls(client, { ca: pki.ca, serverName: 'localhost' }), 10000, 'no client cert'));
  }
  {
    const { client } = await setup(t, opts);
    await t.throwsAsync(within(startTls(client, { ca: pki.ca, serverName: 'localhost', cert: pki.otherClientCert, key: pki.otherClientKey }), 10000, 'wrong client cert'));
  }
  {
    const { client, peers } = await setup(t, opts);
    await within(startTls(client, { ca: pki.ca, serverName: 'localhost', cert: pki.clientCert, key: pki.clientKey }), 10000, 'good client cert');
    await within(peers[0]!.whenGreeted(), 5000, 'server greeted');
    t.is(peers[0]?.core.security.peerCommonName, 'alice');
    t.truthy(peers[0]?.core.security.peerCertificate);
  }
});

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`TLS-PSK over ${version}: the right key tunes with an AEAD suite, a wrong key is refused`, async (t) => {
    const key = randomBytes(32);
    const psk = (id: string): Uint8Array | null => (id === 'site-a' ? key : null);
    {
      const { client, peers } = await setup(t, { psk });
      await within(startTls(client, { psk: { identity: 'site-a', key }, minVersion: version, maxVersion: version }), 10000, 'psk');
      t.is(client.core.security.protocol, version);
      t.regex(client.core.security.cipher ?? '', /GCM|CHACHA20/);
      const ch = await client.startChannel(ECHO_URI);
      t.is(await (await ch.request('psk data')).text(), 'psk data');
      await within(peers[0]!.whenGreeted(), 5000, 'server greeted');
      t.is(peers[0]?.core.security.pskIdentity, 'site-a');
    }
    {
      const { client } = await setup(t, { psk });
      const err = await t.throwsAsync(within(startTls(client, { psk: { identity: 'site-a', key: randomBytes(32) }, minVersion: version, maxVersion: version }), 10000, 'wrong psk'));
      t.true(err instanceof BeepError && err.code === ErrorCodes.TRANSPORT);
      t.is(client.core.state, 'closed');
    }
    {
      const { client } = await setup(t, { psk });
      await t.throwsAsync(within(startTls(client, { psk: { identity: 'unknown', key }, minVersion: version, maxVersion: version }), 10000, 'unknown identity'));
    }
  });
}

test('requireTls: before TLS only TLS is offered and other starts get 538; after TLS they work', async (t) => {
  const { client } = await setup(t, certServer, { requireTls: true });
  t.deepEqual(client.peerProfiles, [TLS_URI]);
  const err = await t.throwsAsync(client.startChannel(ECHO_URI));
  t.true(err instanceof BeepReplyError && err.replyCode === 538, String(err));
  await within(startTls(client, { ca: pki.ca, serverName: 'localhost' }), 10000, 'startTls');
  t.deepEqual(client.peerProfiles, [ECHO_URI]);
  const ch = await client.startChannel(ECHO_URI);
  t.is(await (await ch.request('ok')).text(), 'ok');
});

test('a profile requiring authentication is refused with 530 until the session has an identity', async (t) => {
  const secret = defineProfile({ uri: 'urn:test:secret', requires: { authentication: true }, onMessage: (_m, res) => res.reply('s') });
  const { client, peers } = await setup(t, certServer, { profiles: [tlsProfile(certServer), echoProfile, secret] });
  const err = await t.throwsAsync(client.startChannel('urn:test:secret'));
  t.true(err instanceof BeepReplyError && err.replyCode === 530);
  peers[0]!.core.setIdentity({ authcid: 'alice', authzid: 'alice', mechanism: 'TEST' });
  t.throws(() => peers[0]!.core.setIdentity({ authcid: 'bob', authzid: 'bob', mechanism: 'TEST' }), { code: ErrorCodes.INVALID_STATE });
  const ch = await client.startChannel('urn:test:secret');
  t.is(await (await ch.request('x')).text(), 's');
});

test('a TLS 1.1 client is refused: TLS 1.2 is the floor', async (t) => {
  const { client } = await setup(t, certServer);
  await t.throwsAsync(within(startTls(client, { ca: pki.ca, serverName: 'localhost', maxVersion: 'TLSv1.1' as 'TLSv1.2' }), 10000, 'tls1.1'));
});

test('nothing is sent after <ready/> until the reply: the start is the last frame before the handshake', async (t) => {
  // A peer that queues MSGs on another channel while TLS is being requested:
  // none of them may go out in the clear between <ready/> and the handshake.
  const { client } = await setup(t, certServer);
  const ch = await client.startChannel(ECHO_URI);
  const sock = client.socket;
  const writes: string[] = [];
  const origWrite = sock.write.bind(sock);
  (sock as { write: typeof sock.write }).write = ((chunk: Uint8Array, ...rest: unknown[]) => {
    writes.push(Buffer.from(chunk).toString('latin1'));
    return (origWrite as (c: Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof sock.write;
  const tuning = startTls(client, { ca: pki.ca, serverName: 'localhost' });
  const pending = ch.request('queued during tuning').catch((e: unknown) => e);
  await within(tuning, 10000, 'startTls');
  const e = await pending;
  t.true(e instanceof BeepError, 'the MSG queued during tuning was discarded with the old session state');
  const plain = writes.join('');
  t.true(plain.includes('<ready />'), 'the ready went out');
  t.false(plain.includes('queued during tuning'), 'no MSG went out in the clear after <ready/>');
});

test('one session tuning to TLS leaves every other session of the listener untouched (requireTls still applies)', async (t) => {
  const { client, at } = await setup(t, certServer, { requireTls: true });
  await within(startTls(client, { ca: pki.ca, serverName: 'localhost' }), 10000, 'first session tunes');
  const second = await within(connect({ ...at }), 5000, 'second connect');
  t.teardown(() => second.destroy());
  t.false(second.core.security.tls);
  t.deepEqual(second.peerProfiles, [TLS_URI], 'the second session is offered TLS only');
  const err = await t.throwsAsync(second.startChannel(ECHO_URI));
  t.true(err instanceof BeepReplyError && err.replyCode === 538, String(err));
});
