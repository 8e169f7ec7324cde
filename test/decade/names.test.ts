/**
 * Content names (RFC 6920): the RFC's own example, canonical form, the
 * spellings accepted and refused, and a round-trip property.
 */
import test from 'ava';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { isDecadeError, isName, NameVerifier, nameFromDigest, nameOf, parseName, sameName } from '../../src/decade/index.js';

test('RFC 6920 §8.1: "Hello World!" is ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk', (t) => {
  const n = nameOf('Hello World!');
  t.is(n.name, 'ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk');
  t.is(n.hex, createHash('sha256').update('Hello World!').digest('hex'));
  t.deepEqual(parseName(n.name).digest, n.digest);
});

test('an authority and query parameters are accepted and dropped; the algorithm is case-insensitive', (t) => {
  const canonical = nameOf('Hello World!').name;
  for (const s of [
    'ni://example.com/sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk',
    'ni:///SHA-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk?ct=text/plain',
    'NI:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk',
  ]) {
    t.is(parseName(s).name, canonical, s);
    t.true(sameName(s, canonical));
  }
});

test('malformed names are refused with INVALID_NAME, quoting at most 80 characters', (t) => {
  const good = 'f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk';
  for (const s of [
    '', 'hello', `ni:///sha-512;${good}`, `ni:///sha-256-128;${good.slice(0, 22)}`, `ni:///sha-256;${good}=`,
    `ni:///sha-256;${good.slice(0, 42)}`, `ni:///sha-256;${good}A`, `ni:///sha-256;${good.slice(0, 42)}l`, // last char with pad bits set
    `ni:///sha-256;${good.replace('_', '/')}`, `ni:sha-256;${good}`, `ni:///sha-256;${good}#frag`, `ni:///sha-256;${'A'.repeat(600)}`,
  ]) {
    const err = t.throws(() => parseName(s), undefined, s);
    t.true(isDecadeError(err, 'INVALID_NAME'), s);
    t.true((err as Error).message.length < 200);
    t.false(isName(s));
  }
});

test('property: every digest round-trips through its name', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (d) => {
      const n = nameFromDigest(d);
      const p = parseName(n.name);
      return p.name === n.name && Buffer.from(d).equals(p.digest) && n.name.length === 57;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('NameVerifier checks octets fed in pieces against the name', (t) => {
  const v = new NameVerifier(nameOf('abcdef'));
  v.update(Buffer.from('abc'));
  v.update(Buffer.from('def'));
  t.is(v.octets, 6);
  t.true(v.matches());
  const w = new NameVerifier(nameOf('abcdef').name);
  w.update(Buffer.from('abcdeF'));
  t.false(w.matches());
});
