/**
 * Greeting and channel management (RFC 3080 §2.3) against a real listener,
 * driven byte by byte from a raw socket.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import { defineProfile } from '../../src/index.js';
import {
  ANSWERS,
  ECHO,
  errorCode,
  harness,
  isData,
  profileUris,
  until,
  type RawMessage,
  type RawPeer,
} from '../helpers/raw-peer.js';

const XML_CT = /^content-type:[ \t]*application\/beep\+xml[ \t]*\r\n\r\n/i;

/** Send a channel-0 MSG and collect its reply. */
async function mgmt(p: RawPeer, xml: string): Promise<RawMessage> {
  return p.expectReply(0, p.mgmt(xml));
}

function assertError(t: import('ava').ExecutionContext, r: RawMessage, code: number): void {
  t.is(r.type, 'ERR', `expected ERR, got ${r.type}: ${r.text}`);
  t.regex(r.text, XML_CT, 'negative reply is application/beep+xml');
  t.regex(r.body, /^\s*<error\b/, 'body is an <error> element');
  t.is(errorCode(r.body), code);
}

function assertProfileReply(t: import('ava').ExecutionContext, r: RawMessage, uri: string): void {
  t.is(r.type, 'RPY', `expected RPY, got ${r.type}: ${r.text}`);
  t.regex(r.text, XML_CT);
  t.regex(r.body, /^\s*<profile\b/, 'positive reply to <start> is a <profile> element');
  t.deepEqual(profileUris(r.body), [uri]);
}

// ---------------------------------------------------------------- greeting (§2.3.1.1)

test('greeting: RPY 0 0 with application/beep+xml listing both profiles, sent before the peer sends anything', async (t) => {
  const h = await harness(t);
  const p = await h.peer();
  const g = await p.expectData('RPY', 0, 0, 3000);
  t.is(p.socket.bytesWritten, 0, 'the peer has sent nothing at all');
  t.is(g.index, 0, 'the greeting is the very first frame');
  t.false(g.more);
  t.is(g.seqno, 0);
  t.is(g.size, g.payload.length);
  t.is(g.header, `RPY 0 0 . 0 ${g.size}`);
  t.regex(g.text, XML_CT);
  const body = g.text.replace(XML_CT, '');
  t.regex(body, /^\s*<greeting\b[^>]*>/);
  t.deepEqual(profileUris(body).sort(), [ANSWERS, ECHO].sort());
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- start (§2.3.1.2)

test('start with an even channel number from the initiator → ERR 501, session continues', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  assertError(t, await mgmt(p, `<start number='2'><profile uri='${ECHO}' /></start>`), 501);
  // Nothing was created: channel 2 is still not in use, and odd numbers work.
  assertProfileReply(t, await mgmt(p, `<start number='1'><profile uri='${ECHO}' /></start>`), ECHO);
  t.true(await p.echo(1, 'parity'));
  t.deepEqual(p.violations, []);
});

test('start with an unknown profile → ERR 550', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  assertError(t, await mgmt(p, `<start number='1'><profile uri='urn:test:no-such-profile' /></start>`), 550);
  // Channel 1 was not created: starting it now succeeds.
  assertProfileReply(t, await mgmt(p, `<start number='1'><profile uri='${ECHO}' /></start>`), ECHO);
  t.deepEqual(p.violations, []);
});

for (const [name, xml, code] of [
  ['number 0', `<start number='0'><profile uri='${ECHO}' /></start>`, 501],
  ['number 2^31', `<start number='2147483649'><profile uri='${ECHO}' /></start>`, 501],
  ['no number', `<start><profile uri='${ECHO}' /></start>`, 501],
  ['no profile', `<start number='1'></start>`, 501],
  ['profile without uri', `<start number='1'><profile /></start>`, 501],
] as const) {
  test(`start with bad parameters (${name}) → ERR ${code}, nothing created`, async (t) => {
    const h = await harness(t);
    const p = await h.ready();
    assertError(t, await mgmt(p, xml), code);
    assertProfileReply(t, await mgmt(p, `<start number='1'><profile uri='${ECHO}' /></start>`), ECHO);
    t.deepEqual(p.violations, []);
  });
}

test('start of a channel number already in use → ERR 550, the existing channel is untouched', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  assertError(t, await mgmt(p, `<start number='1'><profile uri='${ANSWERS}' /></start>`), 550);
  t.true(await p.echo(1, 'still the echo profile'));
  t.deepEqual(p.violations, []);
});

test('start offering several profiles where only the second is known → RPY naming the second', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  const r = await mgmt(p, `<start number='1'><profile uri='urn:test:unknown-a' /><profile uri='${ANSWERS}' /><profile uri='urn:test:unknown-b' /></start>`);
  assertProfileReply(t, r, ANSWERS);
  // The channel really runs the answers profile.
  const m = p.request(1, '\r\n2');
  p.autoAck(1, 65536);
  await p.expectData('ANS', 1, m);
  await p.expectData('NUL', 1, m);
  t.deepEqual(p.violations, []);
});

test('start with piggybacked CDATA (and base64) content is accepted and the content reaches the profile', async (t) => {
  const seen: (string | undefined)[] = [];
  const recorder = defineProfile({
    uri: 'urn:test:record',
    onStart(req) {
      seen.push(req.content?.toString('utf8'));
    },
    async onMessage(msg, res) {
      await res.reply(await msg.bytes());
    },
  });
  const h = await harness(t, [recorder]);
  const p = await h.ready();
  const r1 = await mgmt(p, `<start number='1'><profile uri='urn:test:record'><![CDATA[<hello a='1'/> & more]]></profile></start>`);
  assertProfileReply(t, r1, 'urn:test:record');
  const b64 = Buffer.from('binary\u0000content').toString('base64');
  const r3 = await mgmt(p, `<start number='3'><profile uri='urn:test:record' encoding='base64'>${b64}</profile></start>`);
  assertProfileReply(t, r3, 'urn:test:record');
  t.deepEqual(seen, [`<hello a='1'/> & more`, 'binary\u0000content']);
  // Piggybacked CDATA on a bundled profile too.
  assertProfileReply(t, await mgmt(p, `<start number='5'><profile uri='${ECHO}'><![CDATA[ignored by echo]]></profile></start>`), ECHO);
  t.true(await p.echo(5, 'after piggyback'));
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- poorly-formed channel-0 messages (§2.3.1.5)

for (const [name, xml] of [
  ['unclosed element', `<start number='1'><profile uri='${ECHO}'></start>`],
  ['not XML at all', `this is not xml`],
  ['two root elements', `<start number='1'><profile uri='${ECHO}' /></start><start number='3'><profile uri='${ECHO}' /></start>`],
  ['unquoted attribute', `<start number=1><profile uri='${ECHO}' /></start>`],
  ['undefined entity reference', `<start number='1'><profile uri='&nope;' /></start>`],
] as const) {
  test(`malformed XML on channel 0 (${name}) → ERR 500, session continues`, async (t) => {
    const h = await harness(t);
    const p = await h.ready();
    const r = await mgmt(p, xml);
    assertError(t, r, 500);
    t.true(await p.startChannel(1, ECHO).then(() => true), 'channel 1 can still be started');
    t.true(await p.echo(1, 'ok'));
    t.deepEqual(p.violations, []);
  });
}

test('unexpected element in a channel-0 MSG (<ok />) → ERR 500', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  assertError(t, await mgmt(p, `<ok />`), 500);
  t.deepEqual(p.violations, []);
});

test('DOCTYPE with an internal ENTITY on channel 0 → ERR 500 and nothing is expanded', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  // If &e; were expanded, this would start channel 1 with the echo profile.
  const r = await mgmt(p, `<!DOCTYPE start [<!ENTITY e "${ECHO}">]><start number='1'><profile uri='&e;' /></start>`);
  assertError(t, r, 500);
  t.false(r.body.includes(ECHO), 'the entity text does not appear in the reply');
  // Channel 1 was not created: a real start of it now succeeds (it would be 550 otherwise).
  assertProfileReply(t, await mgmt(p, `<start number='1'><profile uri='${ECHO}' /></start>`), ECHO);
  t.deepEqual(p.violations, []);
});

test('billion-laughs DOCTYPE on channel 0 → prompt ERR 500, server stays responsive', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  let dtd = '<!ENTITY l0 "lol">';
  for (let i = 1; i < 10; i++) dtd += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
  const started = Date.now();
  const r = await mgmt(p, `<!DOCTYPE start [${dtd}]><start number='3'><profile uri='&l9;' /></start>`);
  assertError(t, r, 500);
  t.true(r.payload.length < 1024, 'reply is small (nothing expanded into it)');
  t.true(Date.now() - started < 2000);
  t.true(await p.echo(1, 'still responsive'));
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- liberal input

test('liberal XML: double quotes, extra whitespace and newlines, XML declaration', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\r\n<start\n   number = "1"\t>\r\n\r\n    <profile\n        uri="${ECHO}"\n    />\n\n</start>\r\n`;
  assertProfileReply(t, await mgmt(p, xml), ECHO);
  t.true(await p.echo(1, 'liberal'));
  const close = await mgmt(p, `<close\n  number = "1"\n  code = "200"\n></close>\n`);
  t.is(close.type, 'RPY');
  t.regex(close.body, /^\s*<ok\s*\/>\s*$/);
  t.deepEqual(p.violations, []);
});

test('<close> without a number means channel 0: the session is released (RPY <ok/>, then the connection closes cleanly)', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  t.true(await p.echo(1, 'before release'));
  // Channel 1 is still open: the listener closes it itself as part of the release.
  const msgno = p.mgmt(`<close code='200' />`);
  const r = await p.expectReply(0, msgno);
  t.is(r.type, 'RPY', r.text);
  t.regex(r.text, XML_CT);
  t.regex(r.body, /^\s*<ok\s*\/>\s*$/);
  await p.waitClosed(30_000);
  t.deepEqual(
    p.framesSince(r.frames[r.frames.length - 1]!.index + 1).filter(isData).map((f) => f.header),
    [],
    'nothing after the <ok/>',
  );
  const session = h.sessions[0]!;
  await until(() => session.core.isClosed, 3000, 'the server session to end');
  t.true(session.core.wasReleased, 'released by agreement, not terminated');
  t.is(session.core.failure, undefined);
  t.deepEqual(p.violations, []);
});

test("<close number='1' code='200'/> → RPY <ok/>; afterwards a frame on channel 1 terminates the session", async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  t.true(await p.echo(1, 'before close'));
  const r = await mgmt(p, `<close number='1' code='200'/>`);
  t.is(r.type, 'RPY', r.text);
  t.regex(r.text, XML_CT);
  t.regex(r.body, /^\s*<ok\s*\/>\s*$/);
  t.false(p.closed);
  const mark = p.mark();
  p.msg(1, 7, '\r\nafter close');
  await p.waitClosed(30_000);
  t.deepEqual(p.dataFramesSince(mark).map((f) => f.header), [], 'no response');
  const session = h.sessions[0]!;
  await until(() => session.core.isClosed, 3000, 'the server session to end');
  t.false(session.core.wasReleased);
  t.truthy(session.core.failure, 'terminated with an error');
  t.deepEqual(p.violations, []);
});

test('close of a channel that is not open → ERR 550; channel number can be reused after a close', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  assertError(t, await mgmt(p, `<close number='3' code='200' />`), 550);
  const r = await mgmt(p, `<close number='1' code='200' />`);
  t.is(r.type, 'RPY');
  p.resetChannel(1);
  // A new channel 1 starts from seqno 0 in both directions.
  assertProfileReply(t, await mgmt(p, `<start number='1'><profile uri='${ECHO}' /></start>`), ECHO);
  t.true(await p.echo(1, 'reborn'));
  t.deepEqual(p.violations, []);
});
