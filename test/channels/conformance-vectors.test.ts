/**
 * The example exchanges of RFC 3080 replayed byte for byte from the
 * initiator's side ("C:"/"I:" lines, each line ending in CRLF as the sizes in
 * the RFC imply), checking the listener's answers.
 *
 * The listener's own sequence numbers differ from the RFC's (its greeting is
 * not the RFC's), so replies are checked for their keyword, channel, msgno,
 * continuation, seqno (= octets the listener sent before on channel 0), size
 * and content.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import { defineProfile } from '../../src/index.js';
import { errorCode, harness, profileUris, type RawMessage, type RawPeer } from '../helpers/raw-peer.js';

/** Join RFC example lines: every line ends in CRLF. */
const lines = (...l: string[]): string => l.map((s) => `${s}\r\n`).join('');

/** A frame as the RFC prints it: header line, payload lines, END. */
function rfcFrame(header: string, payloadLines: string[]): { bytes: string; payload: string } {
  const payload = lines(...payloadLines);
  return { bytes: `${header}\r\n${payload}END\r\n`, payload };
}

/** Send an RFC frame on channel 0 verbatim, keeping the peer's seqno tracking in step. */
function sendRfc(p: RawPeer, f: { bytes: string; payload: string }): void {
  p.send(f.bytes);
  p.advance(0, Buffer.byteLength(f.payload));
}

/** RFC 3080 §2.3.1.1 / §2.4: the initiator's greeting. */
const GREETING = rfcFrame('RPY 0 0 . 0 52', ['Content-Type: application/beep+xml', '', '<greeting />']);

/** Dummy profiles bearing the URIs used in the RFC's examples. */
const otp = defineProfile({ uri: 'http://iana.org/beep/SASL/OTP' });
const tlsSeen: (string | undefined)[] = [];
const tls = defineProfile({
  uri: 'http://iana.org/beep/TLS',
  onStart(req) {
    tlsSeen.push(req.content?.toString('utf8'));
    return { accept: true, content: '<proceed />' };
  },
});

/** Connect, wait for the listener's greeting, send the RFC's greeting bytes. Returns the octets the listener sent on channel 0. */
async function rfcSession(t: import('ava').ExecutionContext): Promise<{ p: RawPeer; listenerSeq: number }> {
  const h = await harness(t, [otp, tls]);
  const p = await h.peer();
  const g = await p.expectData('RPY', 0, 0);
  t.is(Buffer.byteLength(GREETING.payload), 52, 'vector sanity: the RFC greeting is 52 octets');
  sendRfc(p, GREETING);
  return { p, listenerSeq: g.size };
}

/** Check a one-frame reply's header against the expected keyword/msgno and the listener's seqno. */
function checkHeader(t: import('ava').ExecutionContext, r: RawMessage, type: 'RPY' | 'ERR', msgno: number, seqno: number): void {
  t.is(r.frames.length, 1);
  const f = r.frames[0]!;
  t.is(f.header, `${type} 0 ${msgno} . ${seqno} ${f.payload.length}`);
}

test('RFC 3080 §2.3.1.2 unsuccessful start (number=2 from the initiator) → ERR 0 1 with <error code=501>', async (t) => {
  const { p, listenerSeq } = await rfcSession(t);
  const msg = rfcFrame('MSG 0 1 . 52 120', [
    'Content-Type: application/beep+xml',
    '',
    "<start number='2'>",
    "   <profile uri='http://iana.org/beep/SASL/OTP' />",
    '</start>',
  ]);
  t.is(Buffer.byteLength(msg.payload), 120, 'vector sanity');
  sendRfc(p, msg);
  const r = await p.expectReply(0, 1);
  checkHeader(t, r, 'ERR', 1, listenerSeq);
  t.regex(r.text, /^Content-Type: application\/beep\+xml\r\n\r\n<error code='501'/);
  t.is(errorCode(r.body), 501);
  t.regex(r.body, /odd/, 'diagnostic says the number must be odd-valued');
  t.deepEqual(p.violations, []);
});

test('RFC 3080 §2.3.1.2 successful start (OTP, ANONYMOUS offered; OTP served) → RPY 0 1 <profile uri=OTP/>', async (t) => {
  const { p, listenerSeq } = await rfcSession(t);
  const msg = rfcFrame('MSG 0 1 . 52 178', [
    'Content-Type: application/beep+xml',
    '',
    "<start number='1'>",
    "   <profile uri='http://iana.org/beep/SASL/OTP' />",
    "   <profile uri='http://iana.org/beep/SASL/ANONYMOUS' />",
    '</start>',
  ]);
  t.is(Buffer.byteLength(msg.payload), 178, 'vector sanity');
  sendRfc(p, msg);
  const r = await p.expectReply(0, 1);
  checkHeader(t, r, 'RPY', 1, listenerSeq);
  // The RFC's reply: "S: RPY 0 1 . 221 87" — same bytes but for the final CRLF.
  const rfcReply = lines('Content-Type: application/beep+xml', '', "<profile uri='http://iana.org/beep/SASL/OTP' />");
  t.is(Buffer.byteLength(rfcReply), 87, 'vector sanity');
  t.is(r.text.trimEnd(), rfcReply.trimEnd());
  t.deepEqual(p.violations, []);
});

test('RFC 3080 §2.3.1.2 start with piggybacked initialization (TLS <ready />) → RPY with <proceed /> in CDATA', async (t) => {
  tlsSeen.length = 0;
  const { p, listenerSeq } = await rfcSession(t);
  const msg = rfcFrame('MSG 0 1 . 52 158', [
    'Content-Type: application/beep+xml',
    '',
    "<start number='1'>",
    "   <profile uri='http://iana.org/beep/TLS'>",
    '       <![CDATA[<ready />]]>',
    '   </profile>',
    '</start>',
  ]);
  t.is(Buffer.byteLength(msg.payload), 158, 'vector sanity');
  sendRfc(p, msg);
  const r = await p.expectReply(0, 1);
  checkHeader(t, r, 'RPY', 1, listenerSeq);
  t.deepEqual(tlsSeen, ['<ready />'], 'the profile got exactly the CDATA content');
  t.deepEqual(profileUris(r.body), ['http://iana.org/beep/TLS']);
  t.regex(r.body, /^\s*<profile uri='http:\/\/iana\.org\/beep\/TLS'>\s*<!\[CDATA\[<proceed \/>\]\]>\s*<\/profile>\s*$/);
  t.deepEqual(p.violations, []);
});

test('RFC 3080 §2.3.1.3 close example (after the §2.3.1.2 start) → RPY 0 2 <ok />', async (t) => {
  const { p, listenerSeq } = await rfcSession(t);
  const start = rfcFrame('MSG 0 1 . 52 178', [
    'Content-Type: application/beep+xml',
    '',
    "<start number='1'>",
    "   <profile uri='http://iana.org/beep/SASL/OTP' />",
    "   <profile uri='http://iana.org/beep/SASL/ANONYMOUS' />",
    '</start>',
  ]);
  sendRfc(p, start);
  const started = await p.expectReply(0, 1);
  t.is(started.type, 'RPY');
  // The RFC prints "MSG 0 2 . 235 71"; after its own 52 + 178 octets the seqno is 230
  // (the RFC's examples are not mutually consistent), so the seqno is ours.
  const close = rfcFrame(`MSG 0 2 . ${52 + 178} 71`, ['Content-Type: application/beep+xml', '', "<close number='1' code='200' />"]);
  t.is(Buffer.byteLength(close.payload), 71, 'vector sanity');
  sendRfc(p, close);
  const r = await p.expectReply(0, 2);
  checkHeader(t, r, 'RPY', 2, listenerSeq + started.payload.length);
  // "S: RPY 0 2 . 392 46" — same bytes but for the final CRLF.
  const rfcOk = lines('Content-Type: application/beep+xml', '', '<ok />');
  t.is(Buffer.byteLength(rfcOk), 46, 'vector sanity');
  t.is(r.text.trimEnd(), rfcOk.trimEnd());
  t.false(p.closed);
  t.deepEqual(p.violations, []);
});

test('RFC 3080 §2.4 release example (<close code=200 /> without number) → RPY 0 1 <ok />, then the connection closes', async (t) => {
  const { p, listenerSeq } = await rfcSession(t);
  const msg = rfcFrame('MSG 0 1 . 52 60', ['Content-Type: application/beep+xml', '', "<close code='200' />"]);
  t.is(Buffer.byteLength(msg.payload), 60, 'vector sanity');
  sendRfc(p, msg);
  const r = await p.expectReply(0, 1);
  checkHeader(t, r, 'RPY', 1, listenerSeq);
  t.is(r.text.trimEnd(), lines('Content-Type: application/beep+xml', '', '<ok />').trimEnd());
  await p.waitClosed(30_000);
  t.deepEqual(p.violations, []);
});

test('RFC 3080 §2.2.1.1 empty-payload example: a message completed by an empty "." frame', async (t) => {
  const { p } = await rfcSession(t);
  // Mirrors "RPY 0 1 * 287 20 … RPY 0 1 . 307 0" from the initiator's side, on channel 0.
  const body = "<start number='1'><profile uri='http://iana.org/beep/SASL/OTP' /></start>";
  const payload = `Content-Type: application/beep+xml\r\n\r\n${body}`;
  const n = Buffer.byteLength(payload);
  p.send(`MSG 0 1 * 52 ${n}\r\n${payload}END\r\nMSG 0 1 . ${52 + n} 0\r\nEND\r\n`);
  p.advance(0, n);
  const r = await p.expectReply(0, 1);
  t.is(r.type, 'RPY');
  t.deepEqual(profileUris(r.body), ['http://iana.org/beep/SASL/OTP']);
  t.deepEqual(p.violations, []);
});
