/**
 * Ordering and flow control against a real listener, from a raw socket:
 * close while a reply is pending (RFC 3080 §2.3.1.3), windows and SEQ frames
 * (RFC 3081 §3.1), pre-emptive replies (RFC 3080 §2.6.3).
 *
 * The raw peer checks every server frame against the window it advertised
 * and against the expected sequence number (see RawPeer.violations).
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import { defineProfile } from '../../src/index.js';
import {
  ANSWERS,
  BEEP_XML_HEAD,
  ECHO,
  errorCode,
  harness,
  isData,
  type RawDataFrame,
  type RawFrame,
  type RawPeer,
} from '../helpers/raw-peer.js';

/** Each server frame on `channel` starts where the previous one ended (from 0). */
function contiguous(p: RawPeer, channel: number): boolean {
  let next = 0;
  for (const f of p.dataOn(channel)) {
    if (f.seqno !== next) return false;
    next += f.size;
  }
  return true;
}

function answersTotal(p: RawPeer, channel: number, msgno: number): Map<number, { octets: number; complete: boolean; lastIndex: number }> {
  const out = new Map<number, { octets: number; complete: boolean; lastIndex: number }>();
  for (const f of p.dataOn(channel)) {
    if (f.type !== 'ANS' || f.msgno !== msgno) continue;
    const a = out.get(f.ansno!) ?? { octets: 0, complete: false, lastIndex: -1 };
    a.octets += f.size;
    if (!f.more) a.complete = true;
    a.lastIndex = f.index;
    out.set(f.ansno!, a);
  }
  return out;
}

// ---------------------------------------------------------------- close while a reply is pending (§2.3.1.3)

test('close while a reply is pending: every ANS and the NUL on channel 1 precede the <ok/> on channel 0', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  p.autoAck(1, 4096); // keep the server's window open, 4096 octets at a time
  const m = p.nextMsgno(1);
  const c = p.nextMsgno(0);
  // The MSG and the close leave in one write: the close arrives before the
  // server has even begun to answer.
  p.send(Buffer.concat([p.frame('MSG', 1, m, '\r\n3:10000'), p.frame('MSG', 0, c, `${BEEP_XML_HEAD}<close number='1' code='200' />`)]));
  const ok = await p.expectReply(0, c, 10000);
  t.is(ok.type, 'RPY', ok.text);
  t.regex(ok.body, /^\s*<ok\s*\/>\s*$/);
  const okIndex = ok.frames[0]!.index;
  const nul = p.dataOn(1).find((f) => f.type === 'NUL' && f.msgno === m);
  t.truthy(nul, 'the NUL was sent');
  t.true(nul!.index < okIndex, 'NUL before <ok/>');
  const answers = answersTotal(p, 1, m);
  t.deepEqual([...answers.keys()].sort(), [0, 1, 2]);
  for (const [ansno, a] of answers) {
    t.true(a.complete, `ANS ${ansno} complete`);
    t.is(a.octets, 2 + 10000, `ANS ${ansno} carries all its octets`); // CRLF (no entity headers) + body
    t.true(a.lastIndex < okIndex, `ANS ${ansno} finished before <ok/>`);
  }
  t.deepEqual(p.dataOn(1).filter((f) => f.index > okIndex).map((f) => f.header), [], 'nothing on channel 1 after <ok/>');
  t.true(contiguous(p, 1));
  t.deepEqual(p.violations, []);
  // The close took effect: channel 1 can be started afresh.
  p.resetChannel(1);
  await p.startChannel(1, ECHO);
  t.true(await p.echo(1, 'new channel 1'));
});

test('close while a reply is stalled on the window: no <ok/> until the reply completes', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  p.request(1, '\r\n3:10000');
  await p.waitReceived(1, 4096);
  await p.waitQuiet(150);
  t.is(p.received(1), 4096, 'the server filled the initial window and stopped');
  const c = p.mgmt(`<close number='1' code='200' />`);
  await p.waitQuiet(200);
  t.deepEqual(
    p.dataOn(0).filter((f) => f.msgno === c).map((f) => f.header),
    [],
    'no reply to the close while the answers are still pending',
  );
  p.autoAck(1, 4096);
  const ok = await p.expectReply(0, c, 10000);
  t.is(ok.type, 'RPY');
  t.regex(ok.body, /^\s*<ok\s*\/>\s*$/);
  const nul = p.dataOn(1).find((f) => f.type === 'NUL');
  t.truthy(nul);
  t.true(nul!.index < ok.frames[0]!.index);
  t.is(p.received(1), 3 * 10002);
  t.deepEqual(p.violations, []);
});

test('release (<close number=0>) while a reply is pending: the whole reply precedes the <ok/>, then the connection closes', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  p.autoAck(1, 4096);
  const m = p.nextMsgno(1);
  const c = p.nextMsgno(0);
  p.send(Buffer.concat([p.frame('MSG', 1, m, '\r\n2:9000'), p.frame('MSG', 0, c, `${BEEP_XML_HEAD}<close number='0' code='200' />`)]));
  const ok = await p.expectReply(0, c, 10000);
  t.is(ok.type, 'RPY', ok.text);
  t.regex(ok.body, /^\s*<ok\s*\/>\s*$/);
  const nul = p.dataOn(1).find((f) => f.type === 'NUL' && f.msgno === m);
  t.truthy(nul);
  t.true(nul!.index < ok.frames[0]!.index);
  t.is(p.received(1), 2 * 9002);
  await p.waitClosed(30_000);
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- ordering within a channel (RFC 3080 §2.6.1)

test('pipelined MSGs on one channel are answered in order', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO, 3: ANSWERS });
  p.autoAck(1, 65536);
  p.autoAck(3, 65536);
  const echoes = Buffer.concat([0, 1, 2, 3, 4].map((i) => p.frame('MSG', 1, i, `\r\nmsg ${i} ${'.'.repeat(i * 200)}`)));
  for (let i = 0; i < 5; i++) p.nextMsgno(1);
  const answers = Buffer.concat([0, 1, 2].map((i) => p.frame('MSG', 3, i, `\r\n3:${1000 + i}`)));
  for (let i = 0; i < 3; i++) p.nextMsgno(3);
  p.send(Buffer.concat([echoes, answers]));
  for (let i = 0; i < 5; i++) t.is((await p.expectReply(1, i)).body, `msg ${i} ${'.'.repeat(i * 200)}`);
  for (let i = 0; i < 3; i++) await p.expectData('NUL', 3, i);
  const order1 = p.dataOn(1).map((f) => f.msgno);
  t.deepEqual(order1, [...order1].sort((a, b) => a - b), 'RPY frames on channel 1 in MSG order');
  const order3 = p.dataOn(3).map((f) => f.msgno);
  t.deepEqual(order3, [...order3].sort((a, b) => a - b), 'the reply to MSG n+1 starts only after the NUL of MSG n');
  for (let i = 0; i < 3; i++) {
    const sizes = p.dataOn(3).filter((f) => f.msgno === i && f.type === 'ANS').reduce((n, f) => n + f.size, 0);
    t.is(sizes, 3 * (1002 + i));
  }
  t.deepEqual(p.violations, []);
});

test('an oversized channel-0 MSG (beyond 64 KiB) gets ERR 500, its remaining frames are absorbed, the session continues', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  const msgno = p.nextMsgno(0);
  const total = `${BEEP_XML_HEAD}<start number='3'><profile uri='${ECHO}'><![CDATA[${'x'.repeat(80 * 1024)}]]></profile></start>`;
  let off = 0;
  while (off < total.length) {
    await p.waitWindow(0, 1);
    const n = Math.min(p.serverEdge(0) - p.seq(0), 8192, total.length - off);
    p.msg(0, msgno, total.slice(off, off + n), off + n < total.length);
    off += n;
  }
  const r = await p.expectReply(0, msgno);
  t.is(r.type, 'ERR');
  t.is(errorCode(r.body), 500);
  t.true(await p.echo(1, 'alive'));
  assertStartsOk(t, await p.expectReply(0, p.mgmt(`<start number='3'><profile uri='${ECHO}' /></start>`)));
  t.deepEqual(p.violations, []);
});

function assertStartsOk(t: import('ava').ExecutionContext, r: { type: string; text: string }): void {
  t.is(r.type, 'RPY', r.text);
}

// ---------------------------------------------------------------- windows (RFC 3081 §3.1)

test('flow control: the server stops at the initial 4096-octet window, then fills exactly the larger window a SEQ opens', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  const m = p.request(1, '\r\n20:5000'); // 20 × 5002 octets = 100040
  await p.waitReceived(1, 4096);
  await p.waitQuiet(200);
  t.is(p.received(1), 4096, 'exactly the initial window, no more');
  p.ack(1, 65536);
  await p.waitReceived(1, 4096 + 65536);
  await p.waitQuiet(200);
  t.is(p.received(1), 4096 + 65536, 'the larger window is used in full and not exceeded');
  p.autoAck(1, 65536);
  await p.expectData('NUL', 1, m);
  t.is(p.received(1), 20 * 5002);
  t.true(contiguous(p, 1), 'seqnos contiguous on channel 1');
  t.true(contiguous(p, 0), 'seqnos contiguous on channel 0');
  t.deepEqual(p.violations, []);
});

test("flow control: 'SEQ 1 0 65536' before any traffic lets the server send 65536 octets", async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  p.ack(1, 65536, 0);
  p.request(1, '\r\n20:5000');
  await p.waitReceived(1, 65536);
  await p.waitQuiet(200);
  t.is(p.received(1), 65536);
  const maxFrame = Math.max(...p.dataOn(1).map((f) => f.size));
  t.true(maxFrame > 4096, 'frames are no longer capped at the initial window');
  t.deepEqual(p.violations, []);
});

test('flow control: small, odd windows (1000 octets per SEQ) are never exceeded', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS });
  const m = p.request(1, '\r\n10:3001');
  await p.waitReceived(1, 4096);
  await p.waitQuiet(100);
  t.is(p.received(1), 4096);
  const mark = p.mark();
  p.autoAck(1, 1000); // every frame answered by "SEQ 1 <ackno> 1000"
  await p.expectData('NUL', 1, m);
  const later = p.framesSince(mark).filter((f): f is RawDataFrame => isData(f) && f.channel === 1);
  t.true(later.length > 10);
  t.true(later.every((f) => f.size <= 1000), 'no frame larger than the 1000-octet window');
  t.is(p.received(1), 10 * 3003);
  t.true(contiguous(p, 1));
  t.deepEqual(p.violations, []);
});

test('flow control: windows are per channel (a stalled channel does not block another)', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ANSWERS, 3: ECHO });
  p.request(1, '\r\n20:5000');
  await p.waitReceived(1, 4096);
  await p.waitQuiet(100);
  t.is(p.received(1), 4096);
  t.true(await p.echo(3, 'channel 3 is not affected'));
  t.is(p.received(1), 4096, 'channel 1 still stalled');
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- the server's SEQ frames (RFC 3081 §3.1.3–4)

test('the server sends a SEQ reopening the window once it consumed a window-filling frame', async (t) => {
  // The RFC 3081 §3.1.1 minimum buffer: the window stays 4096 until data is consumed.
  const h = await harness(t, [], { limits: { receiveWindow: 4096 } });
  const p = await h.ready({ 1: ECHO });
  p.autoAck(1, 65536); // let the echo stream back
  const head = `\r\n${'x'.repeat(4094)}`;
  p.msg(1, 0, head, true); // exactly 4096 octets, '*': the initial window is now full
  t.is(p.seq(1), 4096);
  t.is(p.serverEdge(1), 4096, 'no room left until the server says so');
  const seq = await p.expectFrame<Extract<RawFrame, { type: 'SEQ' }>>((f) => f.type === 'SEQ' && f.channel === 1, 5000, 'SEQ on channel 1');
  t.is(seq.ackno, 4096, 'acknowledges everything sent');
  t.true(seq.ackno + seq.window > 4096, 'and moves the right edge forward');
  // Send the rest within the new window, in several frames.
  const rest = 'y'.repeat(Math.min(20000, seq.window));
  for (let i = 0; i < rest.length; i += 5000) {
    const part = rest.slice(i, i + 5000);
    await p.waitWindow(1, part.length);
    p.msg(1, 0, part, i + 5000 < rest.length);
  }
  const r = await p.expectReply(1, 0, 5000);
  t.is(r.body, head.slice(2) + rest);
  t.deepEqual(p.violations, []);
});

test('a 300 KB message sent as fast as the server’s SEQs allow is accepted and echoed intact', async (t) => {
  const h = await harness(t);
  const p = await h.ready({ 1: ECHO });
  p.autoAck(1, 65536);
  const body = Buffer.alloc(300 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
  const payload = Buffer.concat([Buffer.from('\r\n'), body]);
  let off = 0;
  while (off < payload.length) {
    await p.waitWindow(1, 1);
    const room = p.serverEdge(1) - p.seq(1);
    const n = Math.min(room, 16384, payload.length - off);
    p.msg(1, 0, payload.subarray(off, off + n), off + n < payload.length);
    off += n;
  }
  const r = await p.expectReply(1, 0, 10000);
  t.true(r.payload.subarray(2).equals(body));
  t.true(p.frames.some((f) => f.type === 'SEQ' && f.channel === 1 && f.ackno > 65536), 'the server kept reopening the window');
  t.deepEqual(p.violations, []);
});

// ---------------------------------------------------------------- pre-emptive replies (RFC 3080 §2.6.3)

const preempt = defineProfile({
  uri: 'urn:test:preempt',
  onMessage(_msg, res) {
    return res.error(550, 'no');
  },
});

async function preemptScenario(t: import('ava').ExecutionContext, finish: (p: RawPeer) => Promise<void>): Promise<void> {
  const h = await harness(t, [preempt]);
  const p = await h.ready({ 1: 'urn:test:preempt', 3: ECHO });
  const m0 = p.nextMsgno(1);
  p.msg(1, m0, `\r\n${'a'.repeat(3998)}`, true); // 4000 octets, more to come
  const err = await p.expectReply(1, m0);
  t.is(err.type, 'ERR');
  t.is(errorCode(err.body), 550);
  await finish(p);
  // The session is healthy: the next MSG on channel 1 gets its reply …
  const m1 = p.request(1, '\r\nnext');
  t.is(m1, 1);
  const r1 = await p.expectReply(1, m1);
  t.is(r1.type, 'ERR');
  t.is(errorCode(r1.body), 550);
  // … other channels work, and nothing else was sent for msgno 0.
  t.true(await p.echo(3, 'healthy'));
  t.is(p.dataOn(1).filter((f) => f.msgno === 0).length, 1, 'exactly one reply frame for the pre-empted MSG');
  t.false(p.closed);
  t.deepEqual(p.violations, []);
}

test('pre-emptive ERR: the remaining MSG frames (beyond the initial window) are ignored and the session stays healthy', async (t) => {
  await preemptScenario(t, async (p) => {
    // 9000 more octets: only possible if the ignored octets still reopen the window.
    for (let i = 0; i < 3; i++) {
      await p.waitWindow(1, 3000);
      p.msg(1, 0, 'b'.repeat(3000), i < 2);
    }
  });
});

test('pre-emptive ERR: the RFC-prescribed empty complete MSG frame ends the message', async (t) => {
  await preemptScenario(t, async (p) => {
    p.msg(1, 0, '', false);
  });
});

test('a new channel\'s whole receive window is announced by a SEQ right after the reply that starts it', async (t) => {
  const h = await harness(t);
  const p = await h.peer();
  await p.greet();
  await p.startChannel(1, ECHO);
  const seq = await p.expectFrame<Extract<RawFrame, { type: 'SEQ' }>>((f) => f.type === 'SEQ' && f.channel === 1, 5000, 'SEQ on channel 1');
  t.is(seq.ackno, 0, 'nothing received yet');
  t.true(seq.window > 4096, `window ${seq.window} beyond the initial 4096`);
  const startReply = p.frames.findIndex((f) => f.type === 'RPY' && f.channel === 0 && f.msgno === 1);
  const seqIndex = p.frames.indexOf(seq);
  t.true(startReply >= 0 && startReply < seqIndex, 'the SEQ follows the RPY that creates the channel');
  t.deepEqual(p.violations, []);
});

test("a new channel's window SEQ leaves in the same write as the start reply (a peer reading the reply never sees only the 4096-octet default)", async (t) => {
  const h = await harness(t);
  const p = await h.peer();
  await p.greet();
  // Every write the listener's socket makes, as one buffer per write call (a corked batch is one _writev).
  const sock = (h.sessions[0] as unknown as { socket: { _write: (...a: unknown[]) => unknown; _writev?: (...a: unknown[]) => unknown } }).socket;
  const writes: string[] = [];
  const write1 = sock._write.bind(sock);
  sock._write = (chunk: unknown, enc: unknown, cb: unknown) => {
    writes.push(Buffer.from(chunk as Uint8Array).toString('latin1'));
    return write1(chunk, enc, cb);
  };
  const writev = sock._writev?.bind(sock);
  if (writev) {
    sock._writev = (chunks: unknown, cb: unknown) => {
      writes.push(Buffer.concat((chunks as { chunk: Uint8Array }[]).map((c) => c.chunk)).toString('latin1'));
      return writev(chunks, cb);
    };
  }
  await p.startChannel(1, ECHO);
  await p.expectFrame((f) => f.type === 'SEQ' && f.channel === 1, 5000, 'SEQ on channel 1');
  const withReply = writes.filter((w) => w.includes('RPY 0 1 '));
  t.is(withReply.length, 1, 'one write carries the start reply');
  const w = withReply[0] as string;
  const seqAt = w.indexOf('SEQ 1 0 ');
  t.true(seqAt > w.indexOf('RPY 0 1 '), `the SEQ of channel 1 follows the reply in that write: ${JSON.stringify(w.slice(0, 200))}`);
  t.deepEqual(p.violations, []);
});
