import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import { FrameBatch, FrameDecoder, encodeDataFrame, encodeSeqFrame, COPY_BELOW, type Frame } from '../../src/framing/index.js';

const joined = (parts: readonly Uint8Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

test('FrameBatch: a SEQ and small frames become one buffer, long payloads pass through by identity, octets as the one-frame encoders make them', (t) => {
  const b = new FrameBatch();
  const big = Buffer.alloc(5000, 7);
  let n = b.seq(1, 0, 4096);
  n += b.data('MSG', 1, 0, false, 0, undefined, [big], big.length);
  n += b.data('ANS', 1, 2, true, 5000, 3, [Buffer.from('sm'), Buffer.from('all')], 5);
  const out = b.take();
  t.truthy(out);
  t.is((out as Uint8Array[]).length, 3, 'short run, the long payload, short run');
  t.is((out as Uint8Array[])[1], big, 'the long payload is the very same buffer');
  const expected = joined([encodeSeqFrame(1, 0, 4096), ...encodeDataFrame({ type: 'MSG', channel: 1, msgno: 0, more: false, seqno: 0 }, big), ...encodeDataFrame({ type: 'ANS', channel: 1, msgno: 2, more: true, seqno: 5000, ansno: 3 }, [Buffer.from('small')])]);
  t.deepEqual(joined(out as Uint8Array[]), expected);
  t.is(n, expected.length, 'the returned counts add up to the octets');
  t.is(b.take(), null, 'taken: the batch starts empty');
});

test('FrameBatch: a later batch never overwrites the octets of an earlier one still held by the transport', (t) => {
  const b = new FrameBatch();
  b.data('RPY', 3, 1, false, 0, undefined, [Buffer.from('first')], 5);
  const first = b.take() as Uint8Array[];
  const copy = joined(first);
  for (let i = 0; i < 2000; i++) {
    b.data('RPY', 3, 1, false, 0, undefined, [Buffer.alloc(100, i & 0xff)], 100);
    b.take();
  }
  t.deepEqual(joined(first), copy);
});

test('FrameBatch: fields out of range throw RangeError before anything is written', (t) => {
  const b = new FrameBatch();
  t.throws(() => b.data('ANS', 1, 1, false, 0, undefined, [], 0), { instanceOf: RangeError });
  t.throws(() => b.data('NUL', 1, 1, true, 0, undefined, [], 0), { instanceOf: RangeError });
  t.throws(() => b.seq(-1, 0, 0), { instanceOf: RangeError });
  t.is(b.take(), null);
});

test('property: a batch decodes to the frames put in, every octet in order, and never copies a payload piece of COPY_BELOW octets or more', (t) => {
  const piece = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: COPY_BELOW, max: 9000 }).map((n) => new Uint8Array(n).fill(n & 0xff)));
  const item = fc.oneof(
    fc.record({ kind: fc.constant('seq' as const), channel: fc.nat(1000), ackno: fc.nat(), window: fc.nat(1 << 30) }),
    fc.record({ kind: fc.constant('data' as const), channel: fc.nat(1000), msgno: fc.nat(1000), more: fc.boolean(), seqno: fc.nat(), parts: fc.array(piece, { maxLength: 4 }) }),
  );
  fc.assert(
    fc.property(fc.array(item, { minLength: 1, maxLength: 12 }), (items) => {
      const b = new FrameBatch();
      const longIn: Uint8Array[] = [];
      for (const it of items) {
        if (it.kind === 'seq') b.seq(it.channel, it.ackno, it.window);
        else {
          const size = it.parts.reduce((a, p) => a + p.byteLength, 0);
          b.data('MSG', it.channel, it.msgno, it.more, it.seqno, undefined, it.parts, size);
          for (const p of it.parts) if (p.byteLength >= COPY_BELOW) longIn.push(p);
        }
      }
      const out = b.take() as Uint8Array[];
      for (const p of longIn) if (!out.includes(p)) return false;
      const frames: Frame[] = [];
      const payloads: Buffer[] = [];
      let cur: Buffer[] = [];
      const dec = new FrameDecoder({ onHeader: () => undefined, onPayload: (p: Uint8Array) => void cur.push(Buffer.from(p)) });
      dec.push(joined(out), (f) => {
        frames.push(f);
        payloads.push(Buffer.concat(cur));
        cur = [];
      });
      if (frames.length !== items.length) return false;
      return items.every((it, i) => {
        const f = frames[i] as Frame;
        if (it.kind === 'seq') return f.type === 'SEQ' && f.channel === it.channel && f.ackno === it.ackno && f.window === it.window;
        return f.type === 'MSG' && f.channel === it.channel && f.msgno === it.msgno && f.more === it.more && f.seqno === it.seqno && (payloads[i] as Buffer).equals(joined(it.parts));
      });
    }),
    { numRuns: 300 },
  );
  t.pass();
});
