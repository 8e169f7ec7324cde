/**
 * PSK derivation of the data plane: RFC 5869 HKDF-SHA256 vectors, a
 * known-answer vector for the uid derivation (computed independently, see
 * spec/scistream-data.md), and the properties that matter: deterministic,
 * uid-specific, identity ≠ key, identity reveals nothing of the uid.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { derivePsk, hkdfSha256, pskResolver, uidOctets, PSK_IDENTITY_LENGTH, PSK_KEY_LENGTH } from '../../../src/scistream/data/psk.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const range = (from: number, to: number): Buffer => Buffer.from(Array.from({ length: to - from }, (_, i) => from + i));

test('HKDF-SHA256: RFC 5869 appendix A test cases 1, 2 and 3', (t) => {
  // A.1: basic test case with SHA-256.
  t.is(
    hkdfSha256(Buffer.alloc(22, 0x0b), range(0x00, 0x0d), range(0xf0, 0xfa), 42).toString('hex'),
    '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  );
  // A.2: longer inputs/outputs.
  t.is(
    hkdfSha256(range(0x00, 0x50), range(0x60, 0xb0), range(0xb0, 0x100), 82).toString('hex'),
    'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  );
  // A.3: zero-length salt and info.
  t.is(
    hkdfSha256(Buffer.alloc(22, 0x0b), Buffer.alloc(0), Buffer.alloc(0), 42).toString('hex'),
    '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  );
});

test('derivePsk: known-answer vector for uid 000102…0f', (t) => {
  const { identity, key } = derivePsk('000102030405060708090a0b0c0d0e0f');
  t.is(identity, '78bead27337e6415c946dea7646d5803');
  t.deepEqual(key, hex('46ee3f5aadf8ec26e15b9c92cc568ea6c1c62b72586a5bfcb903c9a9f3d52127'));
});

test('derivePsk: lengths, determinism, case and UUID spelling of the same uid agree', (t) => {
  const uid = '4F8583BCA4D311EE9FD7034D1FCFD2D3';
  const a = derivePsk(uid);
  t.is(a.key.length, PSK_KEY_LENGTH);
  t.is(a.identity.length, PSK_IDENTITY_LENGTH * 2);
  t.regex(a.identity, /^[0-9a-f]{32}$/);
  t.deepEqual(derivePsk(uid.toLowerCase()), a);
  t.deepEqual(derivePsk('4f8583bc-a4d3-11ee-9fd7-034d1fcfd2d3'), a);
});

test('uid validation: fewer than 128 bits, odd length, non-hex and over-long uids are refused', (t) => {
  for (const bad of ['', 'abc', '0'.repeat(31), '0'.repeat(33), 'g'.repeat(32), '0'.repeat(130), '4f8583bc-a4d3-11ee-9fd7', ' '.repeat(32)]) {
    const err = t.throws(() => derivePsk(bad), undefined, JSON.stringify(bad));
    t.true(err instanceof BeepError && err.code === ErrorCodes.INVALID_ARGUMENT);
  }
  t.is(uidOctets('ab'.repeat(16)).length, 16);
  t.is(uidOctets('ab'.repeat(64)).length, 64);
});

test('property: distinct uids give distinct keys and identities; the identity is neither the key nor shows the uid', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 32 }), fc.uint8Array({ minLength: 16, maxLength: 32 }), (a, b) => {
      const ua = Buffer.from(a).toString('hex');
      const ub = Buffer.from(b).toString('hex');
      const pa = derivePsk(ua);
      const pb = derivePsk(ub);
      if (ua !== ub) {
        if (pa.identity === pb.identity || pa.key.equals(pb.key)) return false;
      }
      // Key and identity come from different info strings: no prefix relation.
      if (pa.key.subarray(0, PSK_IDENTITY_LENGTH).toString('hex') === pa.identity) return false;
      // No 8-hex-digit window of the uid shows up in the identity.
      for (let i = 0; i + 8 <= ua.length; i += 2) if (pa.identity.includes(ua.slice(i, i + 8))) return false;
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('pskResolver: the derived key for the derived identity only', (t) => {
  const uid = 'aa'.repeat(16);
  const { identity, key } = derivePsk(uid);
  const resolve = pskResolver(uid);
  t.deepEqual(resolve(identity), key);
  t.is(resolve(derivePsk('bb'.repeat(16)).identity), null);
  t.is(resolve(uid), null, 'the uid itself is not an identity');
  t.is(resolve(''), null);
  t.is(resolve(identity.toUpperCase()), null);
  t.is(resolve(identity + '0'), null);
});
