/**
 * RFC 3080 §2.2.1.1 / RFC 3081 §3.1.3 conformance, driven by a raw-socket
 * peer: every poorly-formed frame terminates the session "without generating
 * a response" — and only that session: a second session on the same listener
 * keeps working, and the listener keeps accepting connections.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import { defineProfile, type ChannelProfile, type ServerOptions } from '../../src/index.js';
import {
  ANSWERS,
  BEEP_XML_HEAD,
  ECHO,
  RFC_GREETING_PAYLOAD,
  buildFrame,
  errorCode,
  harness,
  isData,
  until,
  type Harness,
  type RawFrame,
  type RawPeer,
} from '../helpers/raw-peer.js';

interface BadCase {
  /** Extra profiles the listener serves. */
  profiles?: readonly ChannelProfile[];
  /** Listener options (e.g. limits). */
  serverOptions?: Omit<ServerOptions, 'profiles'>;
  /** Channels peer A starts first (default: channel 1 echo). */
  channels?: Record<number, string>;
  /** Skip the greeting exchange (A never greets). */
  noGreeting?: boolean;
  /** Extra preparation on A before the bad bytes (e.g. get a reply in progress). */
  prepare?: (a: RawPeer) => Promise<void>;
  /** The poorly-formed bytes (may include valid frames before the bad one). */
  bad: (a: RawPeer) => string | Buffer;
  /** Frames after the mark that are legitimate (answers to a valid MSG sent with the bad bytes). */
  allow?: (f: RawFrame) => boolean;
}

/** A channel-0 MSG payload that is valid in every respect (a start of an unknown profile). */
const PROBE = `${BEEP_XML_HEAD}<start number='99'><profile uri='urn:test:none' /></start>`;
const PROBE_LEN = Buffer.byteLength(PROBE);

async function probe(a: RawPeer): Promise<void> {
  // A harmless round trip: proves A's session is alive and in sync right before the bad frame.
  const msgno = a.mgmt(`<start number='99'><profile uri='urn:test:none' /></start>`);
  const r = await a.expectReply(0, msgno);
  if (r.type !== 'ERR' || errorCode(r.body) !== 550) throw new Error(`probe got ${r.type} ${r.text}`);
}

async function assertServerHealthy(t: import('ava').ExecutionContext, h: Harness, b: RawPeer): Promise<void> {
  // A's session is gone from the server; B's is still there.
  await until(() => h.server.sessions.size === 1, 3000, 'the terminated session to be dropped');
  t.is(h.server.sessions.size, 1);
  // B, which was open all along, still round-trips.
  t.true(await b.echo(1, 'after the other session was terminated'), 'concurrent session still echoes');
  t.false(b.closed);
  t.deepEqual(b.violations, []);
  // And the listener still accepts and serves new sessions.
  const c = await h.ready({ 1: ECHO });
  t.true(await c.echo(1, 'fresh session'));
  t.deepEqual(c.violations, []);
}

const terminates = test.macro({
  async exec(t, c: BadCase) {
    const h = await harness(t, c.profiles, c.serverOptions);
    const b = await h.ready({ 1: ECHO });
    t.true(await b.echo(1, 'before'), 'concurrent session echoes before');

    let a: RawPeer;
    if (c.noGreeting) {
      a = await h.peer();
      await a.expectData('RPY', 0, 0); // the server's greeting; we send none
    } else {
      a = await h.ready(c.channels ?? { 1: ECHO });
      await probe(a);
    }
    await c.prepare?.(a);
    const mark = a.mark();
    a.send(c.bad(a));
    await a.waitClosed(30_000);
    t.true(a.closed, 'server closed the connection');
    const responses = a.framesSince(mark).filter((f) => isData(f) && !(c.allow?.(f) ?? false));
    t.deepEqual(
      responses.map((f) => f.header),
      [],
      'no response frame was generated for the poorly-formed frame',
    );
    t.deepEqual(a.violations, []);
    await assertServerHealthy(t, h, b);
  },
  title: (name = '') => `terminates without response: ${name}`,
});

// Shorthand: a channel-0 MSG header line with A's current seqno and the probe payload.
const ch0 = (a: RawPeer, header: (seq: number, msgno: number, size: number) => string): string =>
  `${header(a.seq(0), a.nextMsgno(0), PROBE_LEN)}\r\n${PROBE}END\r\n`;

// ---------------------------------------------------------------- keyword / header syntax

test('unknown keyword', terminates, { bad: (a) => ch0(a, (s, m, n) => `FOO 0 ${m} . ${s} ${n}`) });
test('lower-case keyword', terminates, { bad: (a) => ch0(a, (s, m, n) => `msg 0 ${m} . ${s} ${n}`) });
test('malformed header: non-numeric msgno', terminates, { bad: (a) => ch0(a, (s, _m, n) => `MSG 0 x . ${s} ${n}`) });
test('malformed header: leading zero in msgno', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 0${m} . ${s} ${n}`) });
test('malformed header: leading zero in channel', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 00 ${m} . ${s} ${n}`) });
test('malformed header: leading zero in size', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} . ${s} 0${n}`) });
test('malformed header: extra space between parameters', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0  ${m} . ${s} ${n}`) });
test('malformed header: trailing space', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} . ${s} ${n} `) });
test('malformed header: tab separator', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG\t0 ${m} . ${s} ${n}`) });
test('malformed header: missing size parameter', terminates, { bad: (a) => `MSG 0 ${a.nextMsgno(0)} . ${a.seq(0)}\r\nEND\r\n` });
test('malformed header: extra parameter', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} . ${s} ${n} 0`) });
test('malformed header: invalid continuation indicator', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} + ${s} ${n}`) });
test('malformed header: negative msgno', terminates, { bad: (a) => ch0(a, (s, _m, n) => `MSG 0 -1 . ${s} ${n}`) });
test('malformed header: channel number out of range (2^31)', terminates, { bad: () => `MSG 2147483648 0 . 0 0\r\nEND\r\n` });
test('malformed header: seqno out of range (2^32)', terminates, { bad: (a) => ch0(a, (_s, m, n) => `MSG 0 ${m} . 4294967296 ${n}`) });
test('malformed header: LF without CR', terminates, { bad: (a) => `MSG 0 ${a.nextMsgno(0)} . ${a.seq(0)} ${PROBE_LEN}\n${PROBE}END\r\n` });
test('header line too long, no CRLF ever sent', terminates, {
  // The server must not wait for a line end that never comes.
  bad: (a) => `MSG 0 ${a.nextMsgno(0)} . ${a.seq(0)} ${'9'.repeat(300)}`,
});
test('SEQ header: window out of range (2^31)', terminates, { bad: () => `SEQ 0 0 2147483648\r\n` });
test('SEQ header: missing window', terminates, { bad: () => `SEQ 0 0\r\n` });

// ---------------------------------------------------------------- channel numbers

test('MSG on a channel never started (3)', terminates, { bad: () => buildFrame('MSG', 3, 0, false, 0, '\r\nhello') });
test('MSG on a listener-parity channel never started (2)', terminates, { bad: () => buildFrame('MSG', 2, 0, false, 0, '\r\nhello') });

// ---------------------------------------------------------------- message numbers

test('MSG reusing a msgno whose reply is still being sent', terminates, {
  channels: { 1: ANSWERS },
  async prepare(a) {
    // 1000 answers of 1000 octets: far more than the 4096-octet window we
    // never open, so the reply is provably still in progress.
    a.request(1, '\r\n1000:1000');
    await a.expectData('ANS', 1, 0);
  },
  bad: (a) => a.frame('MSG', 1, 0, '\r\n1'),
  allow: (f) => f.type === 'ANS' && f.channel === 1,
});
test('two MSGs with the same msgno back to back (reply cannot complete in between)', terminates, {
  channels: { 1: ANSWERS },
  bad: (a) => Buffer.concat([a.frame('MSG', 1, 0, '\r\n1000:1000'), a.frame('MSG', 1, 0, '\r\n1000:1000')]),
  // If TCP splits the write, answers to the first (valid) MSG may legitimately start.
  allow: (f) => f.type === 'ANS' && f.channel === 1 && f.msgno === 0,
});
test('forged RPY for a msgno the server never sent (RPY 0 5)', terminates, {
  bad: (a) => a.frame('RPY', 0, 5, `${BEEP_XML_HEAD}<ok />`),
});
test('forged second greeting (RPY 0 0 after the greeting completed)', terminates, {
  bad: (a) => a.frame('RPY', 0, 0, RFC_GREETING_PAYLOAD),
});
test('RPY on channel 1, where the server never sent a MSG', terminates, { bad: (a) => a.frame('RPY', 1, 0, '\r\nhi') });
test('ERR for a msgno the server never sent', terminates, { bad: (a) => a.frame('ERR', 0, 3, `${BEEP_XML_HEAD}<error code='550' />`) });
test('ANS for a msgno the server never sent', terminates, { bad: (a) => a.frame('ANS', 1, 0, '\r\nhi', { ansno: 0 }) });
test('NUL for a msgno the server never sent', terminates, { bad: (a) => a.frame('NUL', 1, 0, '') });

// ---------------------------------------------------------------- sequence numbers

test('seqno gap (one too high)', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} . ${s + 1} ${n}`) });
test('seqno repeated (one too low)', terminates, { bad: (a) => ch0(a, (s, m, n) => `MSG 0 ${m} . ${s - 1} ${n}`) });
test('seqno restarting at 0 on a channel already used', terminates, {
  async prepare(a) {
    if (!(await a.echo(1, 'x'))) throw new Error('echo failed');
  },
  bad: () => buildFrame('MSG', 1, 1, false, 0, '\r\nx'),
});

// ---------------------------------------------------------------- NUL / trailer / continuation

test('NUL with non-zero size', terminates, { bad: (a) => `NUL 1 0 . ${a.seq(1)} 5\r\nhelloEND\r\n` });
test('NUL with intermediate continuation', terminates, { bad: (a) => `NUL 1 0 * ${a.seq(1)} 0\r\nEND\r\n` });
test('bad trailer (END misspelt)', terminates, { bad: (a) => `MSG 1 0 . ${a.seq(1)} 7\r\n\r\nhelloEXD\r\n` });
test('bad trailer (payload longer than size)', terminates, { bad: (a) => `MSG 1 0 . ${a.seq(1)} 5\r\n\r\nhelloEND\r\n` });
test('bad trailer (END followed by LF only)', terminates, { bad: (a) => `MSG 1 0 . ${a.seq(1)} 7\r\n\r\nhelloEND\n` });
test('continuation violation: MSG 1 0 * then MSG 1 1 .', terminates, {
  channels: { 1: ANSWERS },
  bad: (a) => Buffer.concat([a.frame('MSG', 1, 0, '\r\n1', { more: true }), a.frame('MSG', 1, 1, '\r\n1')]),
});

// ---------------------------------------------------------------- windows (RFC 3081 §3.1)

// A listener whose receive buffer is the RFC 3081 §3.1.1 minimum never widens
// a fresh channel's window beyond 4096 before data is consumed.
const RFC_WINDOW = { limits: { receiveWindow: 4096 } };
test('window overrun: 4097 octets in one frame on a fresh channel', terminates, {
  serverOptions: RFC_WINDOW,
  channels: { 1: ANSWERS },
  bad: (a) => a.frame('MSG', 1, 0, 'a'.repeat(4097), { unchecked: true }),
});
test('window overrun: 4000 + 200 octets on a fresh channel without a SEQ', terminates, {
  serverOptions: RFC_WINDOW,
  channels: { 1: ANSWERS },
  // No line end in the payload: the MIME header block never ends, so nothing
  // is consumed and no SEQ can legitimately widen the window meanwhile.
  bad: (a) =>
    Buffer.concat([
      a.frame('MSG', 1, 0, 'a'.repeat(4000), { more: true }),
      a.frame('MSG', 1, 0, 'a'.repeat(200), { unchecked: true }),
    ]),
});
test('window overrun: one octet beyond the window the server announced for a fresh channel', terminates, {
  channels: { 1: ANSWERS },
  prepare: async (a) => {
    await a.waitWindow(1, 4097); // the server's SEQ announcing its whole receive window
  },
  bad: (a) => a.frame('MSG', 1, 0, 'a'.repeat(a.serverEdge(1) - a.seq(1) + 1), { unchecked: true }),
});
test('SEQ for a channel never opened', terminates, { bad: () => `SEQ 7 0 4096\r\n` });
test('SEQ acknowledging octets never sent (channel 0)', terminates, { bad: (a) => `SEQ 0 ${a.received(0) + 1} 4096\r\n` });
test('SEQ acknowledging octets never sent (fresh channel 1)', terminates, { bad: () => `SEQ 1 1 4096\r\n` });

// ---------------------------------------------------------------- greeting first (RFC 3080 §2.3.1.1)

const startPayload = `${BEEP_XML_HEAD}<start number='1'><profile uri='${ECHO}' /></start>`;
test('MSG (a start) before the peer greeted', terminates, { noGreeting: true, bad: (a) => a.frame('MSG', 0, 1, startPayload) });
test('MSG 0 0 instead of a greeting', terminates, { noGreeting: true, bad: (a) => a.frame('MSG', 0, 0, startPayload) });
test('RPY 0 1 instead of the greeting', terminates, { noGreeting: true, bad: (a) => a.frame('RPY', 0, 1, RFC_GREETING_PAYLOAD) });
test('ANS 0 0 as the greeting', terminates, { noGreeting: true, bad: (a) => a.frame('ANS', 0, 0, RFC_GREETING_PAYLOAD, { ansno: 0 }) });
test('NUL 0 0 as the greeting', terminates, { noGreeting: true, bad: (a) => a.frame('NUL', 0, 0, '') });
test('MSG on channel 1 before the greeting', terminates, { noGreeting: true, bad: (a) => a.frame('MSG', 1, 0, '\r\nhi') });
test('poorly-formed XML in the peer\'s greeting (RFC 3080 §2.2.2.1)', terminates, {
  noGreeting: true,
  bad: (a) => a.frame('RPY', 0, 0, `${BEEP_XML_HEAD}<greeting><oops></greeting>`),
});

// ---------------------------------------------------------------- replies to a MSG the server really sent

/**
 * A profile that asks the peer a question (MSG 1 0) as soon as its channel
 * opens, so the rules about reply frames can be exercised against a msgno
 * that is genuinely awaiting a reply.
 */
function askerProfile(outcomes: string[]): ChannelProfile {
  return defineProfile({
    uri: 'urn:test:asker',
    onOpen(ch) {
      ch.request('question')
        .then(async (m) => outcomes.push(`RPY ${await m.text()}`))
        .catch((e: { code?: string }) => outcomes.push(`rejected ${e.code ?? String(e)}`));
    },
  });
}

const asked = async (a: RawPeer): Promise<void> => {
  const q = await a.expectData('MSG', 1, 0);
  if (q.text !== '\r\nquestion') throw new Error(`unexpected question ${q.text}`);
};
const askerCase = (bad: (a: RawPeer) => Buffer): BadCase => ({
  profiles: [askerProfile([])],
  channels: { 1: 'urn:test:asker' },
  prepare: asked,
  bad,
});

test('NUL with non-zero size, for a msgno awaiting its reply (after a complete ANS)', terminates,
  askerCase((a) => Buffer.concat([a.frame('ANS', 1, 0, '\r\nx', { ansno: 0 }), Buffer.from(`NUL 1 0 . ${a.seq(1)} 5\r\nhelloEND\r\n`)])));
test('NUL with intermediate continuation, for a msgno awaiting its reply', terminates,
  askerCase((a) => Buffer.concat([a.frame('ANS', 1, 0, '\r\nx', { ansno: 0 }), Buffer.from(`NUL 1 0 * ${a.seq(1)} 0\r\nEND\r\n`)])));
test('second RPY for a msgno whose reply was completely received', terminates,
  askerCase((a) => Buffer.concat([a.frame('RPY', 1, 0, '\r\nanswer'), a.frame('RPY', 1, 0, '\r\nagain')])));
test('reply keyword changes mid-message (RPY * then ERR .)', terminates,
  askerCase((a) => Buffer.concat([a.frame('RPY', 1, 0, '\r\npart', { more: true }), a.frame('ERR', 1, 0, 'rest')])));
test('NUL after an intermediate RPY frame', terminates,
  askerCase((a) => Buffer.concat([a.frame('RPY', 1, 0, '\r\npart', { more: true }), a.frame('NUL', 1, 0, '')])));
test('RPY after a complete ANS for the same msgno', terminates,
  askerCase((a) => Buffer.concat([a.frame('ANS', 1, 0, '\r\nx', { ansno: 0 }), a.frame('RPY', 1, 0, '\r\ny')])));

test('control: a well-formed RPY in two frames, and a well-formed ANS…NUL, are accepted', async (t) => {
  const outcomes: string[] = [];
  const h = await harness(t, [askerProfile(outcomes)]);
  const a = await h.ready({ 1: 'urn:test:asker', 3: 'urn:test:asker', 5: ECHO });
  await asked(a);
  a.send(Buffer.concat([a.frame('RPY', 1, 0, '\r\nan', { more: true }), a.frame('RPY', 1, 0, 'swer')]));
  const q3 = await a.expectData('MSG', 3, 0);
  t.is(q3.text, '\r\nquestion');
  a.send(Buffer.concat([
    a.frame('ANS', 3, 0, '\r\none', { ansno: 0, more: true }),
    a.frame('ANS', 3, 0, '\r\ntwo', { ansno: 1 }),
    a.frame('ANS', 3, 0, '', { ansno: 0 }),
    a.frame('NUL', 3, 0, ''),
  ]));
  t.true(await a.echo(5, 'still fine'));
  await until(() => outcomes.length === 2, 3000, 'both requests to settle');
  // channel.request() resolves a RPY and refuses a one-to-many reply locally.
  t.deepEqual(outcomes.sort(), ['RPY answer', 'rejected BEEP_ERR_BAD_REPLY']);
  t.false(a.closed);
  t.deepEqual(a.violations, []);
});

// ---------------------------------------------------------------- abrupt disconnect

test('a peer vanishing in the middle of a one-to-many reply does not disturb the listener', async (t) => {
  const h = await harness(t);
  const b = await h.ready({ 1: ECHO });
  const a = await h.ready({ 1: ANSWERS });
  a.request(1, '\r\n1000:1000');
  await a.expectData('ANS', 1, 0);
  a.destroy();
  await a.waitClosed(30_000);
  // The answers handler is stuck in `await res.answer()` when the session
  // dies; its failure must be contained (no unhandled rejection, no crash).
  await assertServerHealthy(t, h, b);
  await until(() => h.handlerErrors.length > 0, 3000, 'the handler failure to be reported');
  t.true(h.handlerErrors.length > 0);
});

// ---------------------------------------------------------------- controls: valid look-alikes do NOT terminate

test('control: reusing a msgno after its reply was completely received is fine', async (t) => {
  const h = await harness(t);
  const a = await h.ready({ 1: ECHO });
  const m1 = a.request(1, '\r\none');
  t.is((await a.expectReply(1, m1)).body, 'one');
  a.msg(1, m1, '\r\ntwo'); // same msgno again
  const r = await a.expectReply(1, m1);
  t.is(r.type, 'RPY');
  t.is(r.body, 'two');
  t.false(a.closed);
  t.deepEqual(a.violations, []);
});

test('control: a message split over several frames, with an empty final frame, is fine', async (t) => {
  const h = await harness(t);
  const a = await h.ready({ 1: ECHO });
  a.send(Buffer.concat([a.frame('MSG', 1, 0, '\r\nab', { more: true }), a.frame('MSG', 1, 0, 'cd', { more: true }), a.frame('MSG', 1, 0, '')]));
  const r = await a.expectReply(1, 0);
  t.is(r.body, 'abcd');
  t.deepEqual(a.violations, []);
});

test('control: a greeting split over two frames, then a frame delivered one octet at a time, are accepted', async (t) => {
  const h = await harness(t);
  const a = await h.peer();
  await a.expectData('RPY', 0, 0);
  const g = `${BEEP_XML_HEAD}<greeting features='x-test' localize='en'>\r\n  <profile uri='urn:test:nothing' />\r\n</greeting>\r\n`;
  a.send(Buffer.concat([a.frame('RPY', 0, 0, g.slice(0, 20), { more: true }), a.frame('RPY', 0, 0, g.slice(20))]));
  await a.startChannel(1, ECHO);
  // The longest msgno, header and payload dribbled out octet by octet.
  const bytes = a.frame('MSG', 1, 2147483647, '\r\ndribble');
  for (const byte of bytes) {
    a.send(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  const r = await a.expectReply(1, 2147483647);
  t.is(r.type, 'RPY');
  t.is(r.body, 'dribble');
  t.false(a.closed);
  t.deepEqual(a.violations, []);
});

test('control: exactly 4096 octets on a fresh channel (the whole initial window) is fine', async (t) => {
  const h = await harness(t);
  const a = await h.ready({ 1: ECHO });
  a.autoAck(1, 65536);
  const body = 'z'.repeat(4094);
  a.msg(1, 0, `\r\n${body}`);
  const r = await a.expectReply(1, 0);
  t.is(r.body, body);
  t.deepEqual(a.violations, []);
});
