/**
 * The dispatch part of a core (src/channels/dispatch.ts): MSGs reach the
 * profile one at a time per channel (RFC 3080 §2.6.1), handlers of one read
 * run together after it, and a handler that fails is replied for. Raw octets
 * in, frames pulled out; no sockets.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { defineProfile, ErrorCodes, type Responder } from '../../src/index.js';
import { SessionCore } from '../../src/channels/index.js';
import { FrameDecoder, type DataFrame } from '../../src/framing/index.js';

const GREETING_PAYLOAD = 'Content-Type: application/beep+xml\r\n\r\n<greeting />';
const GREETING = `RPY 0 0 . 0 ${GREETING_PAYLOAD.length}\r\n${GREETING_PAYLOAD}END\r\n`;

interface Held {
  text: string;
  res: Responder;
}

function setup(onMessage: (text: string, res: Responder) => unknown): { core: SessionCore; errors: unknown[]; calls: number[]; out: () => DataFrame[] } {
  /** Channel numbers of handler calls, recorded the moment each is called. */
  const calls: number[] = [];
  const p = defineProfile({
    uri: 'urn:test:d',
    async onMessage(msg, res, ch) {
      calls.push(ch.number);
      const text = await msg.text();
      const r = onMessage(text, res);
      if (r && typeof (r as Promise<void>).then === 'function') await r;
    },
  });
  const core = new SessionCore({ role: 'listener', profiles: [p], clock: () => 0 });
  const errors: unknown[] = [];
  core.on('handlerError', (e) => errors.push(e));
  core.receive(Buffer.from(GREETING));
  const ch = core.lifecycle.createChannel(1, 'open');
  core.lifecycle.openChannel(ch, p.uri, undefined, true);
  const dec = new FrameDecoder({ maxFrameSize: 1 << 24 });
  const out = (): DataFrame[] => {
    const frames: DataFrame[] = [];
    for (let b = core.pull(); b && b.length > 0; b = core.pull()) {
      dec.push(Buffer.concat(b), (f) => {
        if (f.type !== 'SEQ' && f.channel === 1) frames.push({ ...f, payload: Buffer.from(f.payload) });
      });
    }
    return frames;
  };
  out(); // our greeting
  return { core, errors, calls, out };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function msgs(texts: string[]): Buffer {
  let seq = 0;
  let wire = '';
  texts.forEach((x, i) => {
    const body = `\r\n${x}`;
    wire += `MSG 1 ${i} . ${seq} ${body.length}\r\n${body}END\r\n`;
    seq += body.length;
  });
  return Buffer.from(wire);
}

test('MSGs on one channel reach the profile one at a time, in order (RFC 3080 §2.6.1)', async (t) => {
  const held: Held[] = [];
  const { core, out } = setup((text, res) => {
    held.push({ text, res });
    return new Promise<void>(() => undefined); // replies later, by hand
  });
  core.receive(msgs(['a', 'b', 'c']));
  await settle();
  t.deepEqual(held.map((h) => h.text), ['a'], 'the second waits until the first is replied to');
  void held[0]?.res.reply('A');
  await settle();
  t.deepEqual(held.map((h) => h.text), ['a', 'b']);
  void held[1]?.res.reply('B');
  await settle();
  void held[2]?.res.reply('C');
  await settle();
  const replies = out();
  t.deepEqual(replies.map((f) => [f.type, f.msgno, Buffer.from(f.payload).toString().trim()]), [['RPY', 0, 'A'], ['RPY', 1, 'B'], ['RPY', 2, 'C']]);
});

test('handlers of MSGs on different channels read together run at the end of the read, together, within receive()', async (t) => {
  const seen: string[] = [];
  const order: string[] = [];
  const { core, calls } = setup((text) => {
    seen.push(text);
  });
  const ch3 = core.lifecycle.createChannel(3, 'open');
  core.lifecycle.openChannel(ch3, 'urn:test:d', undefined, true);
  // A handler runs only once every frame of the read is decoded: the second MSG's frame is in when the first handler runs.
  core.on('handlerError', () => undefined);
  const read = Buffer.concat([msgs(['one']), Buffer.from('MSG 3 0 . 0 5\r\n\r\ntwoEND\r\n')]);
  const inboundBefore = core.dispatcher.inboundTotal;
  core.receive(read);
  order.push(`after receive: ${calls.join(',')}`);
  t.deepEqual(calls, [1, 3], 'both handlers ran inside receive(), in the order their MSGs arrived');
  t.is(core.dispatcher.inboundTotal - inboundBefore, 2, 'both MSGs were admitted before either handler ran');
  t.deepEqual(order, ['after receive: 1,3']);
  await settle();
  t.deepEqual(seen.sort(), ['one', 'two']);
});

test('a MSG split over two reads is handed to its profile at the end of the read that completes its head', (t) => {
  const { core, calls } = setup(() => undefined);
  const whole = msgs(['split']);
  core.receive(whole.subarray(0, 10)); // part of the header line
  t.deepEqual(calls, [], 'no handler before the MSG can be read');
  core.receive(whole.subarray(10));
  t.deepEqual(calls, [1]);
});

test('a handler that throws is replied for with ERR 451, without its error text, and reported', async (t) => {
  const { core, errors, out } = setup(() => {
    throw new Error('secret detail');
  });
  core.receive(msgs(['x']));
  await settle();
  const [f] = out();
  t.is(f?.type, 'ERR');
  const text = Buffer.from(f?.payload ?? []).toString();
  t.regex(text, /code=["']451["']/);
  t.notRegex(text, /secret detail/);
  t.is(errors.length, 1);
  t.is((errors[0] as Error).message, 'secret detail');
});

test('an async handler that settles without replying gets ERR 451 and a handlerError with INVALID_STATE', async (t) => {
  const { core, errors, out } = setup(async () => undefined);
  core.receive(msgs(['x']));
  await settle();
  const [f] = out();
  t.is(f?.type, 'ERR');
  t.is((errors[0] as { code?: string }).code, ErrorCodes.INVALID_STATE);
});

test('a MSG is retired once it is wholly received and replied to: the session inbound count returns to zero', async (t) => {
  const { core } = setup((_text, res) => res.reply('ok'));
  core.receive(msgs(['a', 'b']));
  t.is(core.dispatcher.inboundTotal, 2);
  await settle();
  core.pull();
  await settle();
  t.is(core.dispatcher.inboundTotal, 0);
  t.true(core.lifecycle.isQuiescent(core.channels.get(1)!));
});
