import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import {
  FrameDecoder,
  TRAILER,
  byteLength,
  encodeDataFrame,
  encodeSeqFrame,
  formatHeaderLine,
  MAX_INT31,
  MAX_UINT32,
  type Frame,
} from '../../src/framing/index.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const joined = (parts: readonly Uint8Array[]): string => parts.map(text).join('');

test('TRAILER is "END\\r\\n"', (t) => {
  t.is(text(TRAILER), 'END\r\n');
});

test('byteLength sums the parts', (t) => {
  t.is(byteLength([]), 0);
  t.is(byteLength([new Uint8Array(3), new Uint8Array(0), new Uint8Array(7)]), 10);
});

test('encodeDataFrame returns [header, payload, trailer] for one buffer', (t) => {
  const payload = latin1('hello');
  const out = encodeDataFrame({ type: 'MSG', channel: 1, msgno: 2, more: false, seqno: 3 }, payload);
  t.is(out.length, 3);
  t.is(text(out[0]!), 'MSG 1 2 . 3 5\r\n');
  t.is(out[1], payload, 'payload is the very same object, not a copy');
  t.is(text(out[2]!), 'END\r\n');
  t.is(joined(out), 'MSG 1 2 . 3 5\r\nhelloEND\r\n');
});

test('encodeDataFrame passes every payload part through by identity, in order', (t) => {
  const a = latin1('Content-Type: text/plain\r\n\r\n');
  const backing = latin1('xxbodyxx');
  const b = backing.subarray(2, 6); // a view with a non-zero byteOffset
  const c = new Uint8Array([0, 0xff, 0x0d, 0x0a]);
  const out = encodeDataFrame({ type: 'RPY', channel: 7, msgno: 9, more: true, seqno: 100 }, [a, b, c]);
  t.is(out.length, 5);
  t.is(out[1], a);
  t.is(out[2], b);
  t.is(out[3], c);
  t.is(out[4], TRAILER);
  const size = a.byteLength + b.byteLength + c.byteLength;
  t.is(text(out[0]!), `RPY 7 9 * 100 ${size}\r\n`);
  // mutating an input part after encoding shows up in the output: no copy was made
  backing[2] = 0x42;
  t.is(out[2]![0], 0x42);
});

test('encodeDataFrame skips empty parts and counts the rest', (t) => {
  const a = latin1('abc');
  const d = latin1('de');
  const out = encodeDataFrame({ type: 'ERR', channel: 0, msgno: 1, more: false, seqno: 0 }, [
    new Uint8Array(0),
    a,
    Buffer.alloc(0),
    d,
    new Uint8Array(new ArrayBuffer(8), 4, 0),
  ]);
  t.is(out.length, 4);
  t.is(text(out[0]!), 'ERR 0 1 . 0 5\r\n');
  t.is(out[1], a);
  t.is(out[2], d);
  t.is(out[3], TRAILER);
});

test('encodeDataFrame with no payload yields [header, trailer] and size 0', (t) => {
  const none = encodeDataFrame({ type: 'RPY', channel: 0, msgno: 1, more: false, seqno: 307 });
  t.is(none.length, 2);
  t.is(joined(none), 'RPY 0 1 . 307 0\r\nEND\r\n');
  const empty = encodeDataFrame({ type: 'RPY', channel: 0, msgno: 1, more: false, seqno: 307 }, new Uint8Array(0));
  t.is(empty.length, 2);
  t.is(joined(empty), 'RPY 0 1 . 307 0\r\nEND\r\n');
  const emptyList = encodeDataFrame({ type: 'RPY', channel: 0, msgno: 1, more: false, seqno: 307 }, []);
  t.is(joined(emptyList), 'RPY 0 1 . 307 0\r\nEND\r\n');
});

test('encodeDataFrame ANS includes the ansno', (t) => {
  const out = encodeDataFrame({ type: 'ANS', channel: 1, msgno: 0, more: true, seqno: 20, ansno: 1 }, latin1('x'.repeat(20)));
  t.is(text(out[0]!), 'ANS 1 0 * 20 20 1\r\n');
});

test('encodeDataFrame ignores ansno on non-ANS frames', (t) => {
  const out = encodeDataFrame({ type: 'MSG', channel: 1, msgno: 0, more: false, seqno: 0, ansno: 5 }, latin1('x'));
  t.is(text(out[0]!), 'MSG 1 0 . 0 1\r\n');
});

test('encodeDataFrame NUL is header + trailer; NUL with payload or more is a RangeError', (t) => {
  t.is(joined(encodeDataFrame({ type: 'NUL', channel: 1, msgno: 0, more: false, seqno: 50 })), 'NUL 1 0 . 50 0\r\nEND\r\n');
  t.throws(() => encodeDataFrame({ type: 'NUL', channel: 1, msgno: 0, more: false, seqno: 50 }, latin1('x')), {
    instanceOf: RangeError,
  });
  t.throws(() => encodeDataFrame({ type: 'NUL', channel: 1, msgno: 0, more: true, seqno: 50 }), { instanceOf: RangeError });
});

test('encodeDataFrame rejects out-of-range fields with RangeError', (t) => {
  t.throws(() => encodeDataFrame({ type: 'MSG', channel: 2147483648, msgno: 0, more: false, seqno: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeDataFrame({ type: 'MSG', channel: 0, msgno: -1, more: false, seqno: 0 }), { instanceOf: RangeError });
  t.throws(() => encodeDataFrame({ type: 'MSG', channel: 0, msgno: 0, more: false, seqno: 4294967296 }), { instanceOf: RangeError });
  t.throws(() => encodeDataFrame({ type: 'ANS', channel: 0, msgno: 0, more: false, seqno: 0, ansno: 2147483648 }), {
    instanceOf: RangeError,
  });
});

test('encodeDataFrame header is a fresh buffer per call', (t) => {
  const f = { type: 'MSG' as const, channel: 1, msgno: 2, more: false, seqno: 3 };
  const a = encodeDataFrame(f, latin1('x'));
  const b = encodeDataFrame(f, latin1('x'));
  t.not(a[0], b[0]);
  t.deepEqual(text(a[0]!), text(b[0]!));
});

test('encodeSeqFrame exact bytes', (t) => {
  const seq = encodeSeqFrame(3, 4096, 8192);
  t.true(seq instanceof Uint8Array);
  t.is(text(seq), 'SEQ 3 4096 8192\r\n');
  t.deepEqual([...seq], [...latin1('SEQ 3 4096 8192\r\n')]);
  t.is(text(encodeSeqFrame(0, 4294967295, 2147483647)), 'SEQ 0 4294967295 2147483647\r\n');
});

test('encodeSeqFrame rejects out-of-range values with RangeError', (t) => {
  t.throws(() => encodeSeqFrame(-1, 0, 0), { instanceOf: RangeError });
  t.throws(() => encodeSeqFrame(0, 4294967296, 0), { instanceOf: RangeError });
  t.throws(() => encodeSeqFrame(0, 0, 2147483648), { instanceOf: RangeError });
});

test('property: size in the header equals the sum of the parts, and the bytes are header + parts + trailer', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), fc.integer({ min: 0, max: 4294967295 }), (parts, seqno) => {
      const out = encodeDataFrame({ type: 'RPY', channel: 3, msgno: 4, more: false, seqno }, parts);
      const size = byteLength(parts);
      const expectedParts = parts.filter((p) => p.byteLength > 0);
      if (out.length !== expectedParts.length + 2) return false;
      if (text(out[0]!) !== `RPY 3 4 . ${seqno} ${size}\r\n`) return false;
      if (!expectedParts.every((p, i) => out[i + 1] === p)) return false;
      // The decoder must agree.
      const frames: Frame[] = [];
      new FrameDecoder().push(Buffer.concat(out), (f) => frames.push(f));
      const f = frames[0];
      return (
        frames.length === 1 &&
        f !== undefined &&
        f.type === 'RPY' &&
        f.size === size &&
        Buffer.from(f.payload).equals(Buffer.concat(parts))
      );
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: the encoded header octets are exactly formatHeaderLine\'s text (data and SEQ frames)', (t) => {
  const int31 = fc.integer({ min: 0, max: MAX_INT31 });
  const uint32 = fc.integer({ min: 0, max: MAX_UINT32 });
  const edge = fc.constantFrom(0, 1, 9, 10, 99, 100, 999999999, 1000000000, MAX_INT31);
  const n31 = fc.oneof(int31, edge);
  fc.assert(
    fc.property(fc.constantFrom('MSG' as const, 'RPY' as const, 'ERR' as const, 'ANS' as const), n31, n31, fc.boolean(), fc.oneof(uint32, edge), n31, fc.nat(300), (type, channel, msgno, more, seqno, ansno, size) => {
      const f = type === 'ANS' ? { type, channel, msgno, more, seqno, ansno } : { type, channel, msgno, more, seqno };
      const out = encodeDataFrame(f, new Uint8Array(size));
      return text(out[0]!) === formatHeaderLine({ ...f, size });
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(n31, fc.oneof(uint32, edge), n31, (channel, ackno, window) => text(encodeSeqFrame(channel, ackno, window)) === formatHeaderLine({ type: 'SEQ', channel, ackno, window })),
    { numRuns: 2000 },
  );
  t.is(text(encodeDataFrame({ type: 'NUL', channel: 3, msgno: 4, more: false, seqno: 5 })[0]!), 'NUL 3 4 . 5 0\r\n');
  t.throws(() => encodeDataFrame({ type: 'NUL', channel: 3, msgno: 4, more: true, seqno: 5 }), { instanceOf: RangeError });
  t.throws(() => encodeSeqFrame(-1, 0, 0), { instanceOf: RangeError });
  t.throws(() => encodeDataFrame({ type: 'MSG', channel: 1, msgno: MAX_INT31 + 1, more: false, seqno: 0 }), { instanceOf: RangeError });
});
