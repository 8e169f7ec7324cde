/**
 * Message bodies (src/channels/message.ts) without a session: an
 * IncomingMessage fed frame payloads as the inbound path feeds them (views
 * into receive blocks, header blocks split anywhere), read with
 * `takeBytes()`, `bytes()`, `views()` and iteration; and the reuse of
 * OutboundMessages (issue 13, heap per message).
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { ErrorCodes } from '../../src/index.js';
import { IncomingMessage, OutboundMessage, type IncomingHooks } from '../../src/channels/message.js';
import { RxBuffers, type RxBlock } from '../../src/channels/rx.js';

function hooks(max = 1 << 20): IncomingHooks & { credited: number; readies: number } {
  const h = {
    credited: 0,
    readies: 0,
    credit(n: number) {
      h.credited += n;
    },
    ready() {
      h.readies++;
    },
    maxEntityHeaders: 32,
    maxMessageSize: max,
  };
  return h;
}

/** `text` as it lands in a receive block: a view into the block, with the block. */
function landed(rx: RxBuffers, text: string): [Buffer, RxBlock] {
  const into = rx.next();
  const n = into.write(text, 'latin1');
  return [rx.landed(n), rx.current];
}

test('takeBytes: null while the message is incomplete, then the body alone (header block excluded), credited once; the block is released', (t) => {
  const rx = new RxBuffers();
  const h = hooks();
  const m = new IncomingMessage('MSG', 1, 0, undefined, h);
  const [v, blk] = landed(rx, 'Content-Type: text/plain\r\n\r\nhello');
  m.deliver(v, false, blk);
  t.is(h.readies, 1, 'ready once the header block is in');
  t.is(blk.refs, 1, 'the queued view holds its block');
  t.is(m.takeBytes(), null, 'not complete yet: nothing taken');
  m.deliver(new Uint8Array(0), true);
  const b = m.takeBytes();
  t.is(b?.toString(), 'hello');
  t.is(m.contentType, 'text/plain');
  t.is(h.credited, v.length, 'header and body octets both credited');
  t.is(blk.refs, 0, 'the block is free again');
  t.not(b?.buffer, blk.buf.buffer, 'a short body is a copy, not a view into the reused block');
  t.is(m.takeBytes(), null, 'taken once only');
  t.true(m.readableEnded);
});

test('takeBytes: a header block split over several payloads, the body in several pieces, joined', (t) => {
  const rx = new RxBuffers();
  const h = hooks();
  const m = new IncomingMessage('RPY', 1, 0, undefined, h);
  const wire = 'Content-Type: a/b\r\nX-Y: z\r\n\r\nfirst|second|third';
  for (const piece of [wire.slice(0, 5), wire.slice(5, 26), wire.slice(26, 33), wire.slice(33, 40), wire.slice(40)]) {
    const [v, blk] = landed(rx, piece);
    m.deliver(v, false, blk);
    blk.hold(); // as the next read would find it, if this view were not queued: no rewinding under the test
    blk.release();
  }
  m.deliver(new Uint8Array(0), true);
  t.is(m.headers['x-y'], 'z');
  t.is(m.takeBytes()?.toString(), 'first|second|third');
  t.is(h.credited, wire.length);
});

test('bytes(): a body right behind its header in one view resolves to the body alone, as views() and iteration do', async (t) => {
  const rx = new RxBuffers();
  const mk = (): IncomingMessage => {
    const m = new IncomingMessage('MSG', 1, 0, undefined, hooks());
    const [v, blk] = landed(rx, '\r\nbody-octets');
    m.deliver(v, true, blk);
    return m;
  };
  t.is((await mk().bytes()).toString(), 'body-octets');
  const viewed: string[] = [];
  for await (const v of mk().views()) viewed.push(v.toString());
  t.deepEqual(viewed, ['body-octets']);
  const iterated: string[] = [];
  for await (const c of mk()) iterated.push((c as Buffer).toString());
  t.deepEqual(iterated, ['body-octets']);
  const streamed: string[] = [];
  const s = mk().stream();
  for await (const c of s) streamed.push((c as Buffer).toString());
  t.deepEqual(streamed, ['body-octets']);
});

test('takeBytes: a body over maxBytes is not taken, and bytes() then rejects with MESSAGE_TOO_LARGE', async (t) => {
  const h = hooks(4);
  const m = new IncomingMessage('MSG', 1, 0, undefined, h);
  m.deliver(Buffer.from('\r\ntoo long'), true);
  t.is(m.takeBytes(), null);
  const err = await t.throwsAsync(m.bytes());
  t.is((err as { code?: string }).code, ErrorCodes.MESSAGE_TOO_LARGE);
});

test('takeBytes: an empty body is an empty buffer; a message that failed before it was complete, or was discarded, gives null', (t) => {
  const a = new IncomingMessage('MSG', 1, 0, undefined, hooks());
  a.deliver(Buffer.from('\r\n'), true);
  t.is(a.takeBytes()?.length, 0);
  const b = new IncomingMessage('MSG', 1, 1, undefined, hooks());
  b.deliver(Buffer.from('\r\nx'), false);
  b.fail(new Error('gone')); // (a complete message cannot fail: its body is all here)
  t.is(b.takeBytes(), null);
  const c = new IncomingMessage('MSG', 1, 2, undefined, hooks());
  const hc = c.hooks as ReturnType<typeof hooks>;
  c.deliver(Buffer.from('\r\nxyz'), true);
  c.discard();
  t.is(c.takeBytes(), null);
  t.is(hc.credited, 5, 'discarding credits header and body');
});

test('takeBytes after stream(): null (the body is the stream\'s)', (t) => {
  const m = new IncomingMessage('MSG', 1, 0, undefined, hooks());
  m.deliver(Buffer.from('\r\nabc'), true);
  m.stream();
  t.is(m.takeBytes(), null);
});

test('OutboundMessage: a reusable message comes back as new once its final frame is out; others, or ones still waited on, never do', (t) => {
  const a = OutboundMessage.make('RPY', 3);
  a.write(Buffer.from('\r\n'));
  a.write(Buffer.from('payload'));
  a.end();
  a.reusable = true;
  a.holdAfter = true;
  a.completes = { any: 1 };
  const parts: Uint8Array[] = [];
  t.is(a.take(1000, parts), 9);
  t.true(a.done);
  OutboundMessage.recycle(a);
  const b = OutboundMessage.make('ANS', 4, 2);
  t.is(b, a, 'the same object, reused');
  t.is(b.type, 'ANS');
  t.is(b.msgno, 4);
  t.is(b.ansno, 2);
  t.false(b.done || b.ended || b.started || b.holdAfter || b.truncated || b.reusable);
  t.is(b.completes, undefined);
  t.is(b.queued, 0);
  b.write(Buffer.from('xy'));
  b.end();
  t.is(b.take(1000, parts), 2, 'a reused message carries nothing of its previous life');
  t.is(Buffer.from(parts[0] as Uint8Array).toString(), 'xy');
  // Not reusable: stays out of the spares.
  OutboundMessage.recycle(b);
  t.not(OutboundMessage.make('RPY', 5), b);
  // Not done yet: not recycled even if reusable.
  const c = OutboundMessage.make('RPY', 6);
  c.reusable = true;
  c.write(Buffer.from('abc'));
  OutboundMessage.recycle(c);
  t.not(OutboundMessage.make('RPY', 7), c);
  // A NUL made from the spares is ended at once, as a new one is.
  const d = OutboundMessage.make('MSG', 8);
  d.write(Buffer.from('m'));
  d.end();
  d.take(10, parts);
  d.reusable = true;
  OutboundMessage.recycle(d);
  const e = OutboundMessage.make('NUL', 9);
  t.is(e, d);
  t.true(e.ended);
});
