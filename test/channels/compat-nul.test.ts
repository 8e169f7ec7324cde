/**
 * Interoperability with the Vortex Library (C), whose default ANS/NUL replies end with
 * `NUL 1 0 . 20 2` and a payload of CRLF (an empty MIME header block), which RFC 3080
 * §2.2.1.1 calls poorly formed. A raw-socket listener replays that frame sequence: a greeting,
 * a channel start, and to each MSG two ANS frames then the NUL with CRLF. With
 * `compat: { acceptNulHeaderBlock: true }` the answers complete (and the two octets do not leak
 * from the window); without it — the default — the session is terminated. Any other NUL payload
 * ends the session either way. Plus the decoder alone, at every split point.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BeepError, connect, ErrorCodes, type Session } from '../../src/index.js';
import { FrameDecoder, type Frame } from '../../src/framing/index.js';
import { onMsgFrames, scriptedListener } from '../helpers/raw-peer.js';

const URI = 'http://example.org/profiles/vortex-answers';

/** Reject if `p` does not settle within `ms` (a bound, not a measurement). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** One frame as it goes on the wire (latin1 payload). */
function wire(kw: 'RPY' | 'ANS' | 'NUL', channel: number, msgno: number, seqno: number, payload: string, ansno?: number): Buffer {
  const size = Buffer.byteLength(payload, 'latin1');
  return Buffer.from(`${kw} ${channel} ${msgno} . ${seqno} ${size}${ansno === undefined ? '' : ` ${ansno}`}\r\n${payload}END\r\n`, 'latin1');
}

/** The bytes Vortex sends for one ANS/NUL reply to MSG `msgno` on channel 1 from `seqno` on. */
function vortexReply(msgno: number, seqno: number, nulPayload: string): { bytes: Buffer; octets: number } {
  const a0 = wire('ANS', 1, msgno, seqno, '\r\nanswer 0', 0); // 10 octets
  const a1 = wire('ANS', 1, msgno, seqno + 10, '\r\nanswer 1', 1); // 10 octets
  const nul = wire('NUL', 1, msgno, seqno + 20, nulPayload); // NUL 1 0 . 20 2 on the first reply
  return { bytes: Buffer.concat([a0, a1, nul]), octets: 20 + Buffer.byteLength(nulPayload, 'latin1') };
}

/**
 * A listener that behaves as Vortex does by default: greeting, start reply, and to every MSG on
 * channel 1 the answers `answer 0`, `answer 1`, then a NUL whose payload is `nulPayload` (CRLF:
 * Vortex's). Its minimal parser handles what our initiator sends (whole frames, SEQ, any split).
 */
async function vortexListener(t: { teardown(f: () => void): void }, nulPayload = '\r\n'): Promise<{ port: number; sent: string[] }> {
  const sent: string[] = [];
  const port = await scriptedListener(t, (socket) => {
    let seq0 = 0;
    let seq1 = 0;
    const send0 = (msgno: number, payload: string): void => {
      socket.write(wire('RPY', 0, msgno, seq0, payload));
      seq0 += Buffer.byteLength(payload, 'latin1');
    };
    send0(0, `Content-Type: application/beep+xml\r\n\r\n<greeting><profile uri='${URI}' /></greeting>\r\n`);
    onMsgFrames(socket, (ch, msgno, payload) => {
      if (ch === 0 && payload.includes('<start')) {
        send0(msgno, `Content-Type: application/beep+xml\r\n\r\n<profile uri='${URI}' />\r\n`);
      } else if (ch === 1) {
        const r = vortexReply(msgno, seq1, nulPayload);
        seq1 += r.octets;
        sent.push(`NUL 1 ${msgno} . ${seq1 - Buffer.byteLength(nulPayload, 'latin1')} ${Buffer.byteLength(nulPayload, 'latin1')}`);
        socket.write(r.bytes);
      }
      // close / release on channel 0 are never sent in these tests (the session is destroyed).
    });
  });
  return { port, sent };
}

async function answersOf(session: Session): Promise<string[]> {
  const ch = await session.startChannel(URI);
  const got: string[] = [];
  for await (const a of ch.requestAnswers('go')) got.push(await a.text());
  return got;
}

test('compat.acceptNulHeaderBlock: Vortex’s NUL 1 0 . 20 2 with CRLF completes the answers; seqnos and the window stay right over several replies', async (t) => {
  const v = await vortexListener(t);
  const session = await connect({ host: '127.0.0.1', port: v.port, compat: { acceptNulHeaderBlock: true } });
  t.teardown(() => session.destroy());
  const ch = await within(session.startChannel(URI), 30_000, 'start');
  for (let i = 0; i < 3; i++) {
    const got: string[] = [];
    for await (const a of ch.requestAnswers(`go ${i}`)) got.push(await a.text());
    t.deepEqual(got, ['answer 0', 'answer 1'], `reply ${i}`);
  }
  t.deepEqual(v.sent, ['NUL 1 0 . 20 2', 'NUL 1 1 . 42 2', 'NUL 1 2 . 64 2'], 'the captured sequence was replayed (seqnos count the 2 octets)');
  t.is(ch.outstanding.size, 0, 'nothing outstanding');
  const recv = session.core.channels.get(1)?.recv;
  t.is(recv?.expected, 66, 'the next seqno expected counts every octet sent');
  t.is(recv?.buffered, 0, 'the NULs’ octets were released from the window (no leak per reply)');
  t.false(session.core.isClosed, 'the session lives on');
});

test('by default (no compat), Vortex’s NUL with a CRLF payload terminates the session as RFC 3080 §2.2.1.1 requires', async (t) => {
  const v = await vortexListener(t);
  const session = await connect({ host: '127.0.0.1', port: v.port });
  t.teardown(() => session.destroy());
  const err = await t.throwsAsync(within(answersOf(session), 30_000, 'answers'), { instanceOf: BeepError });
  t.truthy(err);
  await within(session.whenClosed(), 30_000, 'session terminated');
  t.true(session.core.isClosed);
  t.is(session.core.failure?.code, ErrorCodes.FRAME_SYNTAX);
  t.regex(session.core.failure?.message ?? '', /NUL frame must be complete and empty: "NUL 1 0 \. 20 2"/);
});

test('with compat, a NUL whose 2 octets are not CRLF still terminates the session', async (t) => {
  const v = await vortexListener(t, 'ab');
  const session = await connect({ host: '127.0.0.1', port: v.port, compat: { acceptNulHeaderBlock: true } });
  t.teardown(() => session.destroy());
  await t.throwsAsync(within(answersOf(session), 30_000, 'answers'), { instanceOf: BeepError });
  await within(session.whenClosed(), 30_000, 'session terminated');
  t.is(session.core.failure?.code, ErrorCodes.FRAME_SYNTAX);
  t.regex(session.core.failure?.message ?? '', /not an empty MIME header block/);
});

test('decoder: with acceptNulHeaderBlock the NUL with CRLF decodes as an empty NUL at every split point; other sizes and payloads are refused', (t) => {
  const bytes = Buffer.concat([vortexReply(0, 0, '\r\n').bytes, wire('ANS', 1, 1, 22, '\r\nx', 0)]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const frames: Frame[] = [];
    const d = new FrameDecoder({ acceptNulHeaderBlock: true, onNulHeaderBlock: (h) => frames.push({ type: 'SEQ', channel: h.channel, ackno: -1, window: h.size }) });
    d.push(bytes.subarray(0, cut), (f) => frames.push(f));
    d.push(bytes.subarray(cut), (f) => frames.push(f));
    const shape = frames.map((f) => (f.type === 'SEQ' ? `released ${f.window}` : `${f.type} ${f.seqno} ${f.size} ${Buffer.from(f.payload).toString('latin1')}`));
    t.deepEqual(shape, ['ANS 0 10 \r\nanswer 0', 'ANS 10 10 \r\nanswer 1', 'NUL 20 2 ', 'released 2', 'ANS 22 3 \r\nx'], `split at ${cut}`);
  }
  // Off by default.
  t.throws(() => new FrameDecoder().push(wire('NUL', 1, 0, 20, '\r\n'), () => undefined), { code: ErrorCodes.FRAME_SYNTAX, message: /NUL frame must be complete and empty/ });
  // Only exactly an empty header block.
  for (const payload of ['\n', '\r\n\r\n', 'ab', '\n\r']) {
    t.throws(() => new FrameDecoder({ acceptNulHeaderBlock: true }).push(wire('NUL', 1, 0, 20, payload), () => undefined), { code: ErrorCodes.FRAME_SYNTAX }, JSON.stringify(payload));
  }
  t.throws(() => new FrameDecoder({ acceptNulHeaderBlock: true }).push(Buffer.from('NUL 1 0 * 20 2\r\n\r\nEND\r\n'), () => undefined), { code: ErrorCodes.FRAME_SYNTAX }, 'an intermediate NUL is still refused');
});
