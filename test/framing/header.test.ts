import { Buffer } from 'node:buffer';
import assert from 'node:assert/strict';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { BeepFramingError, ErrorCodes } from '../../src/errors.js';
import {
  MAX_INT31,
  MAX_UINT32,
  formatHeaderLine,
  parseCanonicalUint,
  parseHeaderBytes,
  parseHeaderLine,
  type FrameHeader,
} from '../../src/framing/index.js';

function rejects(t: ExecutionContext, line: string): void {
  const err = t.throws<BeepFramingError>(() => parseHeaderLine(line), { instanceOf: BeepFramingError });
  t.is(err?.code, ErrorCodes.FRAME_SYNTAX, `code for ${JSON.stringify(line)}`);
  t.is(err?.origin, 'remote');
}

// ---------------------------------------------------------------------------
// Parsing and formatting every keyword
// ---------------------------------------------------------------------------

const good: Array<[string, FrameHeader]> = [
  ['MSG 1 2 . 3 4', { type: 'MSG', channel: 1, msgno: 2, more: false, seqno: 3, size: 4 }],
  ['MSG 0 0 * 0 0', { type: 'MSG', channel: 0, msgno: 0, more: true, seqno: 0, size: 0 }],
  ['RPY 0 0 . 0 110', { type: 'RPY', channel: 0, msgno: 0, more: false, seqno: 0, size: 110 }],
  ['RPY 5 17 * 287 20', { type: 'RPY', channel: 5, msgno: 17, more: true, seqno: 287, size: 20 }],
  ['ERR 0 1 . 221 127', { type: 'ERR', channel: 0, msgno: 1, more: false, seqno: 221, size: 127 }],
  ['ERR 9 8 * 7 6', { type: 'ERR', channel: 9, msgno: 8, more: true, seqno: 7, size: 6 }],
  ['ANS 1 0 * 0 20 0', { type: 'ANS', channel: 1, msgno: 0, more: true, seqno: 0, size: 20, ansno: 0 }],
  ['ANS 1 0 . 40 10 3', { type: 'ANS', channel: 1, msgno: 0, more: false, seqno: 40, size: 10, ansno: 3 }],
  ['NUL 1 0 . 50 0', { type: 'NUL', channel: 1, msgno: 0, more: false, seqno: 50, size: 0 }],
  ['SEQ 3 4096 8192', { type: 'SEQ', channel: 3, ackno: 4096, window: 8192 }],
  ['SEQ 0 0 0', { type: 'SEQ', channel: 0, ackno: 0, window: 0 }],
];

for (const [line, header] of good) {
  test(`parseHeaderLine ${JSON.stringify(line)}`, (t) => {
    // deepEqual also checks that non-ANS headers carry no `ansno` key at all.
    t.deepEqual(parseHeaderLine(line), header);
  });
  test(`formatHeaderLine ${JSON.stringify(line)}`, (t) => {
    t.is(formatHeaderLine(header), `${line}\r\n`);
  });
}

test('parsed non-ANS data headers have no ansno property', (t) => {
  for (const kw of ['MSG', 'RPY', 'ERR', 'NUL']) {
    const h = parseHeaderLine(`${kw} 1 2 . 3 0`);
    t.false('ansno' in h, kw);
  }
  t.true('ansno' in parseHeaderLine('ANS 1 2 . 3 0 4'));
});

// ---------------------------------------------------------------------------
// Accepted boundaries
// ---------------------------------------------------------------------------

const boundaries: Array<[string, FrameHeader]> = [
  ['MSG 0 0 . 0 0', { type: 'MSG', channel: 0, msgno: 0, more: false, seqno: 0, size: 0 }],
  [
    'MSG 2147483647 2147483647 * 4294967295 2147483647',
    { type: 'MSG', channel: MAX_INT31, msgno: MAX_INT31, more: true, seqno: MAX_UINT32, size: MAX_INT31 },
  ],
  [
    'RPY 2147483647 0 . 4294967295 0',
    { type: 'RPY', channel: MAX_INT31, msgno: 0, more: false, seqno: MAX_UINT32, size: 0 },
  ],
  [
    'ERR 0 2147483647 . 0 2147483647',
    { type: 'ERR', channel: 0, msgno: MAX_INT31, more: false, seqno: 0, size: MAX_INT31 },
  ],
  [
    'ANS 2147483647 2147483647 . 4294967295 2147483647 2147483647',
    { type: 'ANS', channel: MAX_INT31, msgno: MAX_INT31, more: false, seqno: MAX_UINT32, size: MAX_INT31, ansno: MAX_INT31 },
  ],
  // RFC 3080 §2.2.1.1 text: ansno in the range 0..4294967295.
  [
    'ANS 0 0 * 0 0 2147483648',
    { type: 'ANS', channel: 0, msgno: 0, more: true, seqno: 0, size: 0, ansno: 2147483648 },
  ],
  [
    'ANS 0 0 * 0 0 4294967295',
    { type: 'ANS', channel: 0, msgno: 0, more: true, seqno: 0, size: 0, ansno: MAX_UINT32 },
  ],
  ['NUL 2147483647 2147483647 . 4294967295 0', { type: 'NUL', channel: MAX_INT31, msgno: MAX_INT31, more: false, seqno: MAX_UINT32, size: 0 }],
  ['SEQ 2147483647 4294967295 2147483647', { type: 'SEQ', channel: MAX_INT31, ackno: MAX_UINT32, window: MAX_INT31 }],
];

for (const [line, header] of boundaries) {
  test(`accepts boundary ${JSON.stringify(line)}`, (t) => {
    t.deepEqual(parseHeaderLine(line), header);
  });
}

test('MAX_INT31 and MAX_UINT32 constants', (t) => {
  t.is(MAX_INT31, 2 ** 31 - 1);
  t.is(MAX_UINT32, 2 ** 32 - 1);
});

// ---------------------------------------------------------------------------
// Rejections: all BeepFramingError / BEEP_ERR_FRAME_SYNTAX
// ---------------------------------------------------------------------------

const bad: Record<string, string[]> = {
  'unknown keyword': [
    'FOO 0 0 . 0 0',
    'MSGX 0 0 . 0 0',
    'MS 0 0 . 0 0',
    'SEQX 0 0 0',
    'END',
    '',
    'XYZ',
    'M\u0000G 0 0 . 0 0',
  ],
  'lower-case keyword': ['msg 0 0 . 0 0', 'Msg 0 0 . 0 0', 'rpy 0 0 . 0 0', 'err 0 0 . 0 0', 'ans 0 0 . 0 0 0', 'nul 0 0 . 0 0', 'seq 0 0 0', 'sEQ 0 0 0'],
  'wrong parameter count': [
    'MSG',
    'MSG 0 0 . 0',
    'MSG 0 0 . 0 0 0',
    'RPY 0 0 .',
    'ERR 0 0 . 0 0 0 0',
    'ANS 0 0 . 0 0',
    'ANS 0 0 . 0 0 0 0',
    'NUL 0 0 . 0',
    'NUL 0 0 . 0 0 0',
    'SEQ',
    'SEQ 0 0',
    'SEQ 0 0 0 0',
  ],
  'double spaces': [
    'MSG  0 0 . 0 0',
    'MSG 0  0 . 0 0',
    'MSG 0 0  . 0 0',
    'MSG 0 0 .  0 0',
    'MSG 0 0 . 0  0',
    'ANS 0 0 . 0 0  0',
    'SEQ  0 0 0',
    'SEQ 0 0  0',
  ],
  'leading or trailing space': [
    ' MSG 0 0 . 0 0',
    'MSG 0 0 . 0 0 ',
    ' ANS 0 0 . 0 0 0',
    'ANS 0 0 . 0 0 0 ',
    'NUL 0 0 . 0 0 ',
    ' SEQ 0 0 0',
    'SEQ 0 0 0 ',
  ],
  'other whitespace': ['MSG\t0 0 . 0 0', 'MSG 0\t0 . 0 0', 'MSG 0 0 . 0 0\r', 'SEQ 0 0 0\r', 'MSG 0 0 . 0 0\n', 'MSG 0 0 . 0\u00a00'],
  'leading zeros': [
    'MSG 01 0 . 0 0',
    'MSG 0 01 . 0 0',
    'MSG 0 0 . 01 0',
    'MSG 0 0 . 0 01',
    'MSG 00 0 . 0 0',
    'RPY 0 0 . 0 0110',
    'ANS 0 0 . 0 0 01',
    'NUL 0 0 . 0 00',
    'SEQ 01 0 0',
    'SEQ 0 00 0',
    'SEQ 0 0 007',
  ],
  signs: [
    'MSG +1 0 . 0 0',
    'MSG -1 0 . 0 0',
    'MSG -0 0 . 0 0',
    'MSG 0 +0 . 0 0',
    'MSG 0 0 . -5 0',
    'MSG 0 0 . 0 +5',
    'ANS 0 0 . 0 0 -1',
    'SEQ -1 0 0',
    'SEQ 0 +1 0',
    'SEQ 0 0 -0',
  ],
  'non-digits': [
    'MSG a 0 . 0 0',
    'MSG 1a 0 . 0 0',
    'MSG 0 0x1 . 0 0',
    'MSG 0 0 . 1e3 0',
    'MSG 0 0 . 0 1.0',
    'MSG 0 0 . 0 \uff11',
    'MSG 0 0 . 0 \u0661',
    'ANS 0 0 . 0 0 x',
    'ANS 0 0 . 0 0 Infinity',
    'SEQ 0 NaN 0',
    'SEQ 0 0 1_000',
  ],
  'out-of-range': [
    'MSG 2147483648 0 . 0 0',
    'MSG 0 2147483648 . 0 0',
    'MSG 0 0 . 0 2147483648',
    'RPY 4294967295 0 . 0 0',
    'ERR 0 0 . 4294967296 0',
    'MSG 0 0 . 9999999999 0',
    'MSG 0 0 . 99999999999 0',
    'ANS 0 0 . 0 0 4294967296',
    'ANS 0 0 . 0 2147483648 0',
    'NUL 2147483648 0 . 0 0',
    'SEQ 2147483648 0 0',
    'SEQ 0 4294967296 0',
    'SEQ 0 0 2147483648',
    'SEQ 0 12345678901234567890 0',
  ],
  'NUL with "*" or non-zero size': ['NUL 0 0 * 0 0', 'NUL 0 0 . 0 1', 'NUL 0 0 * 0 5', 'NUL 1 1 . 10 2147483647'],
  'bad continuation char': [
    'MSG 0 0 x 0 0',
    'MSG 0 0 , 0 0',
    'MSG 0 0 .. 0 0',
    'MSG 0 0 ** 0 0',
    'MSG 0 0 0 0 0',
    'MSG 0 0 + 0 0',
    'ANS 0 0 - 0 0 0',
    'RPY 0 0 \u2024 0 0',
  ],
};

for (const [category, lines] of Object.entries(bad)) {
  test(`parseHeaderLine rejects ${category}`, (t) => {
    for (const line of lines) rejects(t, line);
  });
}

test('rejection messages name the offending token and never echo an unbounded keyword', (t) => {
  const e1 = t.throws<BeepFramingError>(() => parseHeaderLine('MSG 0 01 . 0 0'));
  t.regex(e1?.message ?? '', /msgno/);
  const long = 'X'.repeat(5000);
  const e2 = t.throws<BeepFramingError>(() => parseHeaderLine(long));
  t.true((e2?.message.length ?? Infinity) < 200);
});

// ---------------------------------------------------------------------------
// formatHeaderLine range checks
// ---------------------------------------------------------------------------

const base = { type: 'MSG', channel: 0, msgno: 0, more: false, seqno: 0, size: 0 } as const;
const badFormats: Array<[string, FrameHeader]> = [
  ['channel 2147483648', { ...base, channel: 2147483648 }],
  ['channel -1', { ...base, channel: -1 }],
  ['channel 1.5', { ...base, channel: 1.5 }],
  ['channel NaN', { ...base, channel: Number.NaN }],
  ['channel Infinity', { ...base, channel: Number.POSITIVE_INFINITY }],
  ['msgno 2147483648', { ...base, msgno: 2147483648 }],
  ['msgno -1', { ...base, msgno: -1 }],
  ['seqno 4294967296', { ...base, seqno: 4294967296 }],
  ['seqno -1', { ...base, seqno: -1 }],
  ['size 2147483648', { ...base, size: 2147483648 }],
  ['size 0.5', { ...base, size: 0.5 }],
  ['RPY channel too big', { ...base, type: 'RPY', channel: 2 ** 40 }],
  ['ERR seqno fraction', { ...base, type: 'ERR', seqno: 1.25 }],
  ['ANS ansno 2147483648 (only 31-bit ansno are sent)', { ...base, type: 'ANS', ansno: 2147483648 }],
  ['ANS ansno -1', { ...base, type: 'ANS', ansno: -1 }],
  ['ANS without ansno', { ...base, type: 'ANS' }],
  ['NUL with more', { ...base, type: 'NUL', more: true }],
  ['NUL with size', { ...base, type: 'NUL', size: 1 }],
  ['SEQ channel 2147483648', { type: 'SEQ', channel: 2147483648, ackno: 0, window: 0 }],
  ['SEQ ackno 4294967296', { type: 'SEQ', channel: 0, ackno: 4294967296, window: 0 }],
  ['SEQ ackno -1', { type: 'SEQ', channel: 0, ackno: -1, window: 0 }],
  ['SEQ window 2147483648', { type: 'SEQ', channel: 0, ackno: 0, window: 2147483648 }],
  ['SEQ window fraction', { type: 'SEQ', channel: 0, ackno: 0, window: 0.5 }],
];

for (const [name, h] of badFormats) {
  test(`formatHeaderLine throws RangeError on ${name}`, (t) => {
    t.throws(() => formatHeaderLine(h), { instanceOf: RangeError });
  });
}

test('formatHeaderLine accepts the boundaries', (t) => {
  t.is(
    formatHeaderLine({ type: 'MSG', channel: MAX_INT31, msgno: MAX_INT31, more: true, seqno: MAX_UINT32, size: MAX_INT31 }),
    'MSG 2147483647 2147483647 * 4294967295 2147483647\r\n',
  );
  t.is(
    formatHeaderLine({ type: 'ANS', channel: MAX_INT31, msgno: MAX_INT31, more: false, seqno: MAX_UINT32, size: MAX_INT31, ansno: MAX_INT31 }),
    'ANS 2147483647 2147483647 . 4294967295 2147483647 2147483647\r\n',
  );
  t.is(formatHeaderLine({ type: 'SEQ', channel: MAX_INT31, ackno: MAX_UINT32, window: MAX_INT31 }), 'SEQ 2147483647 4294967295 2147483647\r\n');
  t.is(formatHeaderLine({ type: 'NUL', channel: 0, msgno: 0, more: false, seqno: MAX_UINT32, size: 0 }), 'NUL 0 0 . 4294967295 0\r\n');
});

test('formatHeaderLine ignores an ansno on non-ANS frames', (t) => {
  t.is(formatHeaderLine({ type: 'RPY', channel: 1, msgno: 2, more: false, seqno: 3, size: 4, ansno: 5 }), 'RPY 1 2 . 3 4\r\n');
});

// ---------------------------------------------------------------------------
// parseCanonicalUint
// ---------------------------------------------------------------------------

test('parseCanonicalUint accepts canonical decimals within max and rejects the rest', (t) => {
  t.is(parseCanonicalUint('0', 0), 0);
  t.is(parseCanonicalUint('7', 10), 7);
  t.is(parseCanonicalUint('4294967295', MAX_UINT32), MAX_UINT32);
  t.is(parseCanonicalUint('4294967296', MAX_UINT32), -1);
  t.is(parseCanonicalUint('11', 10), -1);
  for (const tok of ['', '00', '01', '+1', '-1', ' 1', '1 ', '1.0', '1e2', 'a', '12345678901']) {
    t.is(parseCanonicalUint(tok, Number.MAX_SAFE_INTEGER), -1, JSON.stringify(tok));
  }
});

// ---------------------------------------------------------------------------
// Property: format ∘ parse is the identity on valid headers
// ---------------------------------------------------------------------------

const int31 = fc.integer({ min: 0, max: MAX_INT31 });
const uint32 = fc.integer({ min: 0, max: MAX_UINT32 });
const headerArb: fc.Arbitrary<FrameHeader> = fc.oneof(
  fc
    .record({
      type: fc.constantFrom('MSG' as const, 'RPY' as const, 'ERR' as const, 'NUL' as const),
      channel: int31,
      msgno: int31,
      more: fc.boolean(),
      seqno: uint32,
      size: int31,
    })
    .map((h): FrameHeader => (h.type === 'NUL' ? { ...h, more: false, size: 0 } : h)),
  fc.record({
    type: fc.constant('ANS' as const),
    channel: int31,
    msgno: int31,
    more: fc.boolean(),
    seqno: uint32,
    size: int31,
    ansno: int31,
  }),
  fc.record({ type: fc.constant('SEQ' as const), channel: int31, ackno: uint32, window: int31 }),
);

test('property: parseHeaderLine(formatHeaderLine(h)) equals h', (t) => {
  fc.assert(
    fc.property(headerArb, (h) => {
      const line = formatHeaderLine(h);
      if (!line.endsWith('\r\n') || line.slice(0, -2).includes('\r') || line.includes('  ')) return false;
      // fc.record builds null-prototype objects: compare own properties only.
      assert.deepStrictEqual({ ...parseHeaderLine(line.slice(0, -2)) }, { ...h });
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: a single-character mutation of a valid header is either valid or a FRAME_SYNTAX error', (t) => {
  const chars = fc.constantFrom(...'0123456789 .*-+xMSGRPYEANULQ\t\r'.split(''));
  fc.assert(
    fc.property(headerArb, fc.nat(), chars, (h, where, ch) => {
      const line = formatHeaderLine(h).slice(0, -2);
      const i = where % line.length;
      const mutated = line.slice(0, i) + ch + line.slice(i + 1);
      try {
        const parsed = parseHeaderLine(mutated);
        // If it parsed, re-formatting must give back the exact line (canonical form).
        if (parsed.type === 'ANS' && (parsed.ansno ?? 0) > MAX_INT31) return true; // parsed, but never sent
        return formatHeaderLine(parsed) === `${mutated}\r\n`;
      } catch (err) {
        return err instanceof BeepFramingError && err.code === ErrorCodes.FRAME_SYNTAX;
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------
// The decoder's fast path (parseHeaderBytes) gives parseHeaderLine's verdict
// ---------------------------------------------------------------------------

/** parseHeaderBytes on the line's octets: the header, or null where it defers to parseHeaderLine. */
function viaBytes(line: string): FrameHeader | null {
  // Inside a larger buffer, so offsets other than 0 are exercised.
  const buf = Buffer.from(`xx${line}\r\nyy`, 'latin1');
  return parseHeaderBytes(buf, 2, 2 + Buffer.byteLength(line, 'latin1'));
}

function textVerdict(line: string): FrameHeader | 'error' {
  try {
    return parseHeaderLine(line);
  } catch (err) {
    assert.ok(err instanceof BeepFramingError);
    return 'error';
  }
}

/** Same verdict: a header the text parser accepts is parsed identically or deferred; one it rejects is never accepted. */
function agrees(line: string): boolean {
  const fast = viaBytes(line);
  const text = textVerdict(line);
  if (fast === null) return true;
  if (text === 'error') return false;
  assert.deepStrictEqual({ ...fast }, { ...text });
  return true;
}

for (const [line] of good) {
  test(`parseHeaderBytes parses ${JSON.stringify(line)} without deferring`, (t) => {
    t.not(viaBytes(line), null);
    t.true(agrees(line));
  });
}

test('parseHeaderBytes never accepts what parseHeaderLine rejects (boundaries, leading zeros, over-long numbers)', (t) => {
  const lines = [
    'MSG 01 2 . 3 4', 'MSG 1 2 . 3 04', 'MSG 1 2 . 3 2147483648', 'MSG 1 2 . 4294967296 4', 'MSG 2147483648 2 . 3 4',
    'MSG 1 2 . 3 4 ', 'MSG 1 2 . 3', 'MSG  1 2 . 3 4', 'MSG 1 2 , 3 4', 'MSG 1 2 .3 4', 'NUL 1 2 * 3 0', 'NUL 1 2 . 3 1',
    'ANS 1 2 . 3 4', 'ANS 1 2 . 3 4 4294967296', 'ANS 1 2 . 3 4 4294967295', 'SEQ 1 2', 'SEQ 1 2 3 4', 'SEQ 1 4294967295 2147483647',
    'SEQ 1 4294967296 0', 'MSG 12345678901 2 . 3 4', 'MSG 0 0 . 0 0', 'msg 1 2 . 3 4', 'MSGX1 2 . 3 4', 'MSG -1 2 . 3 4',
  ];
  for (const line of lines) t.true(agrees(line), line);
});

test('property: parseHeaderBytes agrees with parseHeaderLine on valid headers and single-character mutations', (t) => {
  const chars = fc.constantFrom(...'0123456789 .*-+xMSGRPYEANULQ\t\r'.split(''));
  fc.assert(
    fc.property(headerArb, fc.nat(), chars, fc.boolean(), (h, where, ch, mutate) => {
      const line = formatHeaderLine(h).slice(0, -2);
      if (!mutate) return viaBytes(line) !== null && agrees(line);
      const i = where % line.length;
      return agrees(line.slice(0, i) + ch + line.slice(i + 1));
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
