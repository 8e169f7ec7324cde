import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import { coalesce } from '../../src/channels/session.js';

const joined = (parts: readonly Uint8Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

test('coalesce: short pieces become one buffer, long payloads pass through by identity, the octets and their order unchanged', (t) => {
  const head = Buffer.from('MSG 1 0 . 0 5000\r\n');
  const big = Buffer.alloc(5000, 7);
  const trailer = Buffer.from('END\r\n');
  const seq = Buffer.from('SEQ 1 0 4096\r\n');
  const out = coalesce([seq, head, big, trailer, head, Buffer.from('small'), trailer]);
  t.is(out.length, 3, 'short run, the long payload, short run');
  t.is(out[1], big, 'the long payload is the very same buffer');
  t.deepEqual(joined(out), joined([seq, head, big, trailer, head, Buffer.from('small'), trailer]));
  const one = [Buffer.from('x')];
  t.is(coalesce(one), one, 'a single piece is left alone');
  const bigs = [big, Buffer.alloc(4096, 1)];
  t.is(coalesce(bigs), bigs, 'only long pieces: nothing to join');
});

test('property: coalesce keeps every octet in order and never copies a piece of 4096 octets or more', (t) => {
  const piece = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 4096, max: 9000 }).map((n) => new Uint8Array(n).fill(n & 0xff)));
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
      const out = coalesce(parts);
      if (!joined(out).equals(joined(parts))) return false;
      const longIn = parts.filter((p) => p.byteLength >= 4096);
      const isLongIn = (p: Uint8Array): boolean => longIn.some((q) => q === p);
      const longOut = out.filter(isLongIn);
      return longOut.length === longIn.length && out.filter((p) => !isLongIn(p)).length <= longIn.length + 1;
    }),
    { numRuns: 500 },
  );
  t.pass();
});
