/**
 * The inbound part of a core (src/channels/inbound.ts) fed raw octets: the
 * header checks of RFC 3080 §2.2.1.1 / §2.2.1.2 and RFC 3081 §3.1 end the
 * session with a stable code, before the frame's payload is read. No sockets.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BeepFramingError, ErrorCodes, defineProfile } from '../../src/index.js';
import { SessionCore } from '../../src/channels/index.js';

const GREETING_PAYLOAD = 'Content-Type: application/beep+xml\r\n\r\n<greeting />';
const GREETING = `RPY 0 0 . 0 ${GREETING_PAYLOAD.length}\r\n${GREETING_PAYLOAD}END\r\n`;
const got: string[] = [];
const ECHO = defineProfile({
  uri: 'urn:test:echo',
  async onMessage(msg, res) {
    got.push(await msg.text());
    await res.reply('ok');
  },
});

function listener(): SessionCore {
  return new SessionCore({ role: 'listener', profiles: [ECHO], clock: () => 0 });
}

/** A core that has read the peer's greeting and has channel 1 open on ECHO. */
function greeted(): SessionCore {
  const c = listener();
  c.inbound.receive(Buffer.from(GREETING), null);
  const ch = c.lifecycle.createChannel(1, 'open');
  c.lifecycle.openChannel(ch, ECHO.uri, undefined, true);
  return c;
}

function msg(channel: number, msgno: number, seqno: number, body: string, more = false): string {
  return `MSG ${channel} ${msgno} ${more ? '*' : '.'} ${seqno} ${body.length}\r\n${body}END\r\n`;
}

function fails(t: import('ava').ExecutionContext, c: SessionCore, wire: string, code: string, text: RegExp): void {
  const err = t.throws(() => c.inbound.receive(Buffer.from(wire), null), { instanceOf: BeepFramingError });
  t.is(err?.code, code);
  t.regex(err?.message ?? '', text);
}

test('nothing but the greeting may arrive first (RFC 3080 §2.3.1.1)', (t) => {
  fails(t, listener(), msg(0, 1, 0, ''), ErrorCodes.PROTOCOL, /expected the peer's greeting/);
});

test("a frame for a channel not in use ends the session (RFC 3080 §2.2.1.1)", (t) => {
  fails(t, greeted(), msg(3, 0, 0, 'x'), ErrorCodes.PROTOCOL, /channel 3, which is not in use/);
});

test('a seqno other than the next expected octet is SEQNO_MISMATCH (RFC 3080 §2.2.1.2)', (t) => {
  fails(t, greeted(), msg(1, 0, 7, 'x'), ErrorCodes.SEQNO_MISMATCH, /seqno 7, expected 0/);
});

test('a frame larger than the window we advertised is WINDOW_OVERRUN (RFC 3081 §3.1.2), checked at its header', (t) => {
  const c = greeted();
  // Only the header: the check must not wait for 5000 payload octets.
  fails(t, c, 'MSG 1 0 . 0 5000\r\n', ErrorCodes.WINDOW_OVERRUN, /5000 octets exceed the window of 4096/);
});

test('a frame of another message inside an unfinished one ends the session (RFC 3080 §2.2.1.1)', (t) => {
  const c = greeted();
  c.inbound.receive(Buffer.from(msg(1, 0, 0, 'ab', true)), null);
  fails(t, c, msg(1, 1, 2, 'cd'), ErrorCodes.PROTOCOL, /frame for msgno 1 inside message 0/);
});

test('a reply to a MSG never sent ends the session (RFC 3080 §2.2.1.1)', (t) => {
  fails(t, greeted(), 'RPY 1 0 . 0 0\r\nEND\r\n', ErrorCodes.PROTOCOL, /no MSG awaiting a reply/);
});

test('through the façade the same error terminates the session and is its failure', (t) => {
  const c = greeted();
  let closed: unknown = 'open';
  c.on('close', (e) => (closed = e));
  c.receive(Buffer.from(msg(1, 0, 9, 'x')));
  t.true(c.isClosed);
  t.is(c.failure?.code, ErrorCodes.SEQNO_MISMATCH);
  t.is(closed, c.failure);
});

test('a MSG split at every octet reaches its profile whole, and its octets are accounted for', async (t) => {
  const c = greeted();
  got.length = 0;
  const wire = Buffer.from(msg(1, 0, 0, 'Content-Type: text/plain\r\n\r\nhello', true) + msg(1, 0, 33, ' world'));
  for (let i = 0; i < wire.length; i++) c.inbound.receive(wire.subarray(i, i + 1), null);
  t.false(c.inbound.midFrame);
  for (let i = 0; i < 10 && got.length === 0; i++) await new Promise((r) => setImmediate(r));
  t.deepEqual(got, ['hello world']);
  t.is(c.channels.get(1)?.recv.expected, 39);
});
