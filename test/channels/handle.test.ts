/**
 * The seam between the channel layer and profiles: the session handle
 * (`channel.session`, `request.session`, `session.handle`) and the tuning
 * context (`request.tuning`, `channel.tuning`, `tuningOf`), over real sockets
 * and, for holding output, over a sans-IO core.
 */
import test from 'ava';
import { BeepError, ErrorCodes } from '../../src/errors.js';
import { connect, createServer, type Session } from '../../src/channels/session.js';
import { SessionCore } from '../../src/channels/core.js';
import { handleOf } from '../../src/channels/handle.js';
import { tuningOf, type SessionHandle, type TuningContext } from '../../src/channels/index.js';
import { defineProfile, echoProfile, ECHO_URI, startTls, tlsProfile } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';

const pki = testPki();

test('profiles see a typed handle: the same object in onStart, advertise and on the channel; tuning only for tuning profiles', async (t) => {
  const seen: { advertised: SessionHandle[]; start?: { session: SessionHandle; tuning: TuningContext | undefined }; tuningStart?: TuningContext | undefined; channel?: SessionHandle; channelTuning?: TuningContext | undefined } = { advertised: [] };
  const plain = defineProfile({
    uri: 'urn:test:plain',
    advertise: (session) => (seen.advertised.push(session), true),
    onStart: ({ session, tuning }) => void (seen.start = { session, tuning }),
    onMessage: async (msg, res, channel) => {
      await msg.dump();
      seen.channel = channel.session;
      seen.channelTuning = channel.tuning;
      await res.reply(`${channel.session.role} ${channel.session.transport?.kind} ${channel.session.remote === undefined ? 'no-remote' : 'remote'}`);
    },
  });
  const tuner = defineProfile({ uri: 'urn:test:tuner', tuning: true, onStart: ({ tuning }) => void (seen.tuningStart = tuning) });
  const server = createServer({ profiles: [plain, tuner] });
  const { port } = await server.listen(0, '127.0.0.1');
  const accepted = new Promise<Session>((r) => server.once('session', r));
  const client = await connect({ port });
  t.teardown(async () => {
    client.destroy();
    await server.close(200);
  });
  const peer = await accepted;
  const ch = await client.startChannel('urn:test:plain');
  t.is(await (await ch.request('who')).text(), 'listener tcp remote');
  t.is(seen.start?.session, peer.handle, 'request.session is the handle of the accepting session');
  t.is(seen.channel, peer.handle, 'channel.session is that same handle');
  t.true(seen.advertised.includes(peer.handle), 'advertise() got it too');
  t.is(seen.start?.tuning, undefined, 'no tuning context for an ordinary profile');
  t.is(seen.channelTuning, undefined);
  await client.startChannel('urn:test:tuner');
  t.truthy(seen.tuningStart, 'a tuning profile gets the tuning context');
  t.is(seen.tuningStart?.session, peer.handle);
  const h = peer.handle;
  t.is(h.id, peer.id);
  t.is(h.role, 'listener');
  t.false(h.security.tls);
  t.is(h.identity, undefined);
  t.deepEqual([...client.handle.peerProfiles].sort(), ['urn:test:plain', 'urn:test:tuner']);
  t.false(h.isClosed);
  // The identity a tuning profile sets is visible through every handle of the state; only once.
  seen.tuningStart?.setIdentity({ authcid: 'alice', authzid: 'alice', mechanism: 'TEST' });
  t.is(h.identity?.authzid, 'alice');
  t.throws(() => seen.tuningStart?.setIdentity({ authcid: 'bob', authzid: 'bob', mechanism: 'TEST' }), { code: ErrorCodes.INVALID_STATE });
  // onClose fires once the session ends; close() through the handle releases it.
  const closed = new Promise<BeepError | undefined>((r) => h.onClose(r));
  await client.handle.close();
  t.is(await closed, undefined, 'released cleanly');
  t.true(h.isClosed);
  const late = await new Promise<BeepError | undefined>((r) => h.onClose(r));
  t.is(late, undefined, 'a listener added after the end is still called');
});

test('a tuning reset (TLS) gives the session a new handle with the same id; the old one reports closed', async (t) => {
  const server = createServer({ profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), echoProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await connect({ port });
  t.teardown(async () => {
    client.destroy();
    await server.close(200);
  });
  const before = client.handle;
  await startTls(client, { ca: pki.ca, serverName: 'localhost' });
  const after = client.handle;
  t.not(after, before);
  t.is(after.id, before.id, 'the session id is kept');
  t.true(before.isClosed, 'the old state is gone');
  t.true(after.security.tls);
  t.is(after.security.protocol, 'TLSv1.3');
  t.is(after.transport?.kind, 'tcp', 'the transport description is kept across the reset');
  const ch = await after.startChannel(ECHO_URI);
  t.is(await (await ch.request('through the handle')).text(), 'through the handle');
});

test('holdOutput stops every frame until resumeOutput (sans-IO core)', (t) => {
  const core = new SessionCore({ role: 'initiator' });
  const tuning = tuningOf(handleOf(core));
  tuning.holdOutput();
  t.true(core.hasOutput, 'the greeting is queued');
  t.is(core.pull(), null, 'nothing leaves while output is held');
  tuning.resumeOutput();
  const out = core.pull();
  t.truthy(out, 'the greeting leaves once resumed');
  t.regex(Buffer.concat((out ?? []).map((b) => Buffer.from(b))).toString('latin1'), /^RPY 0 0 \. 0 \d+\r\n/);
});

test('resetTransport needs transport glue; tuningOf refuses what is not a handle of this library', async (t) => {
  const core = new SessionCore({ role: 'listener' });
  await t.throwsAsync(tuningOf(handleOf(core)).resetTransport(async (raw) => ({ socket: raw, security: { tls: false } })), { code: ErrorCodes.INVALID_STATE });
  const fake = { ...handleOf(core) } as SessionHandle;
  t.throws(() => tuningOf(fake), { code: ErrorCodes.INVALID_ARGUMENT });
});
