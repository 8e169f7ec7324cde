import { Buffer } from 'node:buffer';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { BeepFramingError, ErrorCodes, type ErrorCode } from '../../src/errors.js';
import {
  BEEP_XML,
  DEFAULT_DECODER_LIMITS,
  FrameDecoder,
  MAX_INT31,
  MAX_UINT32,
  encodeDataFrame,
  encodeSeqFrame,
  parseEntityHeaders,
  type DataFrame,
  type DataKeyword,
  type DecoderOptions,
  type Frame,
  type FrameHeader,
} from '../../src/framing/index.js';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Lines joined with CRLF, each line CRLF-terminated (as in the RFC examples). */
const crlfLines = (lines: readonly string[]): string => lines.map((l) => `${l}\r\n`).join('');

/** A frame with the payload replaced by its hex, every own key kept (so a stray `ansno` is visible). */
type Normal = Record<string, unknown>;
function normal(f: Frame): Normal {
  if (f.type === 'SEQ') return { ...f };
  if (f.payload.byteLength !== f.size) throw new Error(`payload length ${f.payload.byteLength} != size ${f.size}`);
  return { ...f, payload: hex(f.payload) };
}

/** Expected data frame (payload given as a latin1 string). */
function dataF(type: DataKeyword, channel: number, msgno: number, more: boolean, seqno: number, payload: string, ansno?: number): Normal {
  const o: Normal = { type, channel, msgno, more, seqno, size: latin1(payload).length };
  if (ansno !== undefined) o['ansno'] = ansno;
  o['payload'] = hex(latin1(payload));
  return o;
}
const seqF = (channel: number, ackno: number, window: number): Normal => ({ type: 'SEQ', channel, ackno, window });

/** Decode chunks with a fresh decoder; frames are normalised as they are delivered. */
function decode(chunks: readonly Uint8Array[], options?: DecoderOptions): Normal[] {
  const dec = new FrameDecoder(options);
  const out: Normal[] = [];
  for (const c of chunks) dec.push(c, (f) => out.push(normal(f)));
  if (!dec.idle) throw new Error('decoder not idle at end of input');
  return out;
}

/** Split `buf` at the given (sorted, possibly repeated) cut points. */
function cut(buf: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Copy a chunk into its own ArrayBuffer, at a non-zero byteOffset, so no two chunks share memory. */
function isolate(chunk: Uint8Array, pad = 3): Uint8Array {
  const ab = new ArrayBuffer(chunk.byteLength + 2 * pad);
  const view = new Uint8Array(ab, pad, chunk.byteLength);
  view.set(chunk);
  new Uint8Array(ab, 0, pad).fill(0xee);
  new Uint8Array(ab, pad + chunk.byteLength, pad).fill(0xee);
  return view;
}

function expectFramingError(t: ExecutionContext, fn: () => void, code: ErrorCode, msg?: string): BeepFramingError | undefined {
  const err = t.throws<BeepFramingError>(fn, { instanceOf: BeepFramingError }, msg);
  t.is(err?.code, code, msg);
  return err;
}

// ---------------------------------------------------------------------------
// RFC 3080 example exchanges as vectors
// ---------------------------------------------------------------------------

const CT = 'Content-Type: application/beep+xml';

interface Vector {
  readonly name: string;
  /** The header line exactly as printed in the RFC. */
  readonly header: string;
  /** The payload, reconstructed from the RFC's lines, CRLF line ends. */
  readonly payload: string;
  /** The size the RFC gives. */
  readonly size: number;
  readonly expect: Omit<DataFrame, 'payload' | 'size'>;
}

const v = (name: string, header: string, size: number, payloadLines: string[], expect: Vector['expect']): Vector => ({
  name,
  header,
  payload: crlfLines(payloadLines),
  size,
  expect,
});

// §2.3.1.1 The Greeting Message
const greetingL = v('2.3.1.1 L greeting', 'RPY 0 0 . 0 110', 110, [CT, '', '<greeting>', "   <profile uri='http://iana.org/beep/TLS' />", '</greeting>'], {
  type: 'RPY', channel: 0, msgno: 0, more: false, seqno: 0,
});
const greetingI = v('2.3.1.1 I greeting', 'RPY 0 0 . 0 52', 52, [CT, '', '<greeting />'], {
  type: 'RPY', channel: 0, msgno: 0, more: false, seqno: 0,
});
// §2.3.1.2 The Start Message
const start120 = v('2.3.1.2 start', 'MSG 0 1 . 52 120', 120, [CT, '', "<start number='1'>", "   <profile uri='http://iana.org/beep/SASL/OTP' />", '</start>'], {
  type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 52,
});
const start178 = v(
  '2.3.1.2 start (two profiles)',
  'MSG 0 1 . 52 178',
  178,
  [CT, '', "<start number='1'>", "   <profile uri='http://iana.org/beep/SASL/OTP' />", "   <profile uri='http://iana.org/beep/SASL/ANONYMOUS' />", '</start>'],
  { type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 52 },
);
const startOk = v('2.3.1.2 start reply', 'RPY 0 1 . 221 87', 87, [CT, '', "<profile uri='http://iana.org/beep/SASL/OTP' />"], {
  type: 'RPY', channel: 0, msgno: 1, more: false, seqno: 221,
});
const startBad = v('2.3.1.2 start (even number)', 'MSG 0 1 . 52 120', 120, [CT, '', "<start number='2'>", "   <profile uri='http://iana.org/beep/SASL/OTP' />", '</start>'], {
  type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 52,
});
const startErr = v(
  '2.3.1.2 start error',
  'ERR 0 1 . 221 127',
  127,
  [CT, '', "<error code='501'>number attribute", 'in &lt;start&gt; element must be odd-valued</error>'],
  { type: 'ERR', channel: 0, msgno: 1, more: false, seqno: 221 },
);
const startInit = v(
  '2.3.1.2 start with init',
  'MSG 0 1 . 52 158',
  158,
  [CT, '', "<start number='1'>", "   <profile uri='http://iana.org/beep/TLS'>", '       <![CDATA[<ready />]]>', '   </profile>', '</start>'],
  { type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 52 },
);
const startInitOk = v(
  '2.3.1.2 start with init reply',
  'RPY 0 1 . 110 121',
  121,
  [CT, '', "<profile uri='http://iana.org/beep/TLS'>", '    <![CDATA[<proceed />]]>', '</profile>'],
  { type: 'RPY', channel: 0, msgno: 1, more: false, seqno: 110 },
);
// §2.3.1.3 The Close Message
const close = v('2.3.1.3 close', 'MSG 0 2 . 235 71', 71, [CT, '', "<close number='1' code='200' />"], {
  type: 'MSG', channel: 0, msgno: 2, more: false, seqno: 235,
});
const closeOk = v('2.3.1.3 ok', 'RPY 0 2 . 392 46', 46, [CT, '', '<ok />'], { type: 'RPY', channel: 0, msgno: 2, more: false, seqno: 392 });
const closeErr = v('2.3.1.3 close refused', 'ERR 0 2 . 392 79', 79, [CT, '', "<error code='550'>still working</error>"], {
  type: 'ERR', channel: 0, msgno: 2, more: false, seqno: 392,
});

const RFC_VECTORS: readonly Vector[] = [greetingL, greetingI, start120, start178, startOk, startBad, startErr, startInit, startInitOk, close, closeOk, closeErr];

const wire = (vec: Vector): string => `${vec.header}\r\n${vec.payload}END\r\n`;

for (const vec of RFC_VECTORS) {
  test(`RFC 3080 §${vec.name}: payload is exactly ${vec.size} octets and decodes`, (t) => {
    t.is(latin1(vec.payload).length, vec.size, 'reconstructed payload length equals the RFC size');
    const bytes = latin1(wire(vec));
    const frames: Frame[] = [];
    new FrameDecoder().push(bytes, (f) => frames.push(f));
    t.is(frames.length, 1);
    const f = frames[0];
    if (f === undefined || f.type === 'SEQ') return t.fail('expected a data frame');
    t.deepEqual({ ...f, payload: null }, { ...vec.expect, size: vec.size, payload: null });
    t.is(text(f.payload), vec.payload);
    const entity = parseEntityHeaders(f.payload, true);
    t.is(entity?.contentType, BEEP_XML);
    t.is(text(f.payload.subarray(entity?.bodyOffset)), vec.payload.slice(`${CT}\r\n\r\n`.length));
    // the same bytes one octet at a time
    const one = decode([...bytes].map((b) => Uint8Array.of(b)));
    t.deepEqual(one, [normal(f)]);
  });
}

test('RFC 3080 §2.3.1.1: the greeting body is the RFC text', (t) => {
  const frames: Frame[] = [];
  new FrameDecoder().push(latin1(wire(greetingL)), (f) => frames.push(f));
  const f = frames[0] as DataFrame;
  t.is(
    text(f.payload),
    'Content-Type: application/beep+xml\r\n\r\n<greeting>\r\n   <profile uri=\'http://iana.org/beep/TLS\' />\r\n</greeting>\r\n',
  );
});

test('RFC 3080 §2.3.1.2/§2.3.1.3: each side of the exchanges decodes as one stream', (t) => {
  const initiator = [greetingI, start178, close];
  const listener = [greetingL, startOk, closeOk];
  for (const side of [initiator, listener]) {
    const bytes = latin1(side.map(wire).join(''));
    const frames: Frame[] = [];
    new FrameDecoder().push(bytes, (f) => frames.push(f));
    t.deepEqual(
      frames.map((f) => (f.type === 'SEQ' ? '' : `${f.type} ${f.channel} ${f.msgno} ${f.seqno} ${f.size}`)),
      side.map((s) => s.header.replace(' . ', ' ')),
    );
    t.deepEqual(
      frames.map((f) => (f.type === 'SEQ' ? '' : text(f.payload))),
      side.map((s) => s.payload),
    );
  }
});

// §2.2.1.1: empty payload and interleaved ANS shapes (the RFC's "..." payloads filled with octets of the given size)
const fill = (n: number, c: string): string => `${c.repeat(n - 2)}\r\n`;
const ANS_EXAMPLE = [
  { line: 'ANS 1 0 * 0 20 0', payload: fill(20, 'a'), expect: dataF('ANS', 1, 0, true, 0, fill(20, 'a'), 0) },
  { line: 'ANS 1 0 * 20 20 1', payload: fill(20, 'b'), expect: dataF('ANS', 1, 0, true, 20, fill(20, 'b'), 1) },
  { line: 'ANS 1 0 . 40 10 0', payload: fill(10, 'c'), expect: dataF('ANS', 1, 0, false, 40, fill(10, 'c'), 0) },
];
const EMPTY_EXAMPLE = [
  { line: 'RPY 0 1 * 287 20', payload: fill(20, 'r'), expect: dataF('RPY', 0, 1, true, 287, fill(20, 'r')) },
  { line: 'RPY 0 1 . 307 0', payload: '', expect: dataF('RPY', 0, 1, false, 307, '') },
];

for (const [name, example] of [
  ['§2.2.1.1 interleaved ANS', ANS_EXAMPLE],
  ['§2.2.1.1 empty final RPY', EMPTY_EXAMPLE],
] as const) {
  test(`RFC 3080 ${name} example decodes in order, whole and byte by byte`, (t) => {
    const bytes = latin1(example.map((e) => `${e.line}\r\n${e.payload}END\r\n`).join(''));
    const expected = example.map((e) => e.expect);
    t.deepEqual(decode([bytes]), expected);
    t.deepEqual(decode([...bytes].map((b) => Uint8Array.of(b))), expected);
  });
}

test('RFC 3080 §2.2.1.1: ANS frames keep their ansno, the empty RPY has an empty payload', (t) => {
  const frames: Frame[] = [];
  const dec = new FrameDecoder();
  dec.push(latin1(ANS_EXAMPLE.map((e) => `${e.line}\r\n${e.payload}END\r\n`).join('') + 'NUL 1 0 . 50 0\r\nEND\r\n'), (f) => frames.push(f));
  t.deepEqual(
    frames.map((f) => (f.type === 'ANS' ? f.ansno : f.type)),
    [0, 1, 0, 'NUL'],
  );
  const empty: Frame[] = [];
  new FrameDecoder().push(latin1('RPY 0 1 . 307 0\r\nEND\r\n'), (f) => empty.push(f));
  const e = empty[0] as DataFrame;
  t.is(e.size, 0);
  t.is(e.payload.byteLength, 0);
  t.false('ansno' in e);
});

// ---------------------------------------------------------------------------
// Every split point
// ---------------------------------------------------------------------------

const BINARY_PAYLOAD = 'END\r\n\r\n\x00\xffEND\r\nMSG 0 0 . 0 0\r\n\r\nEN\nEND\r';
const CORPUS_PARTS: Array<[string, Normal]> = [
  ['MSG 1 0 . 0 5\r\nhelloEND\r\n', dataF('MSG', 1, 0, false, 0, 'hello')],
  ['RPY 1 0 . 5 0\r\nEND\r\n', dataF('RPY', 1, 0, false, 5, '')],
  ['ANS 1 1 * 5 11 0\r\nanswer zeroEND\r\n', dataF('ANS', 1, 1, true, 5, 'answer zero', 0)],
  ['ANS 1 1 . 16 0 7\r\nEND\r\n', dataF('ANS', 1, 1, false, 16, '', 7)],
  ['NUL 1 1 . 16 0\r\nEND\r\n', dataF('NUL', 1, 1, false, 16, '')],
  ['SEQ 1 100 4096\r\n', seqF(1, 100, 4096)],
  [
    `MSG 3 7 * 4294967290 ${latin1(BINARY_PAYLOAD).length}\r\n${BINARY_PAYLOAD}END\r\n`,
    dataF('MSG', 3, 7, true, 4294967290, BINARY_PAYLOAD),
  ],
  ['ERR 2 5 . 0 3\r\n\r\nxEND\r\n', dataF('ERR', 2, 5, false, 0, '\r\nx')],
  ['SEQ 0 0 0\r\n', seqF(0, 0, 0)],
  ['SEQ 2147483647 4294967295 2147483647\r\n', seqF(MAX_INT31, MAX_UINT32, MAX_INT31)],
  ['MSG 3 7 . 4294967295 1\r\n\nEND\r\n', dataF('MSG', 3, 7, false, 4294967295, '\n')],
];
const CORPUS = latin1(CORPUS_PARTS.map(([w]) => w).join(''));
const CORPUS_EXPECTED = CORPUS_PARTS.map(([, e]) => e);

test('corpus decodes whole to the expected frames', (t) => {
  t.true(CORPUS.includes(latin1('END\r\n\r\n\x00\xffEND\r\n')), 'binary payload holds trailer-like bytes');
  t.deepEqual(decode([CORPUS]), CORPUS_EXPECTED);
});

test('every split into two chunks decodes identically', (t) => {
  const want = JSON.stringify(CORPUS_EXPECTED);
  const bad: number[] = [];
  for (let i = 0; i <= CORPUS.length; i++) {
    if (JSON.stringify(decode(cut(CORPUS, [i]))) !== want) bad.push(i);
    // the same split with the chunks copied into separate, offset ArrayBuffers
    if (JSON.stringify(decode(cut(CORPUS, [i]).map((c) => isolate(c)))) !== want) bad.push(-i);
  }
  t.deepEqual(bad, []);
  const first = cut(CORPUS, [37]);
  t.deepEqual(decode(first), CORPUS_EXPECTED);
});

test('every split into three chunks (all index pairs) decodes identically', (t) => {
  const want = JSON.stringify(CORPUS_EXPECTED);
  const bad: Array<[number, number]> = [];
  let count = 0;
  const n = CORPUS.length;
  for (let i = 0; i <= n; i++) {
    for (let j = i; j <= n; j++) {
      count++;
      if (JSON.stringify(decode(cut(CORPUS, [i, j]))) !== want) bad.push([i, j]);
    }
  }
  t.is(count, ((n + 1) * (n + 2)) / 2);
  t.deepEqual(bad, []);
});

test('one byte at a time decodes identically', (t) => {
  const bytes = [...CORPUS].map((b) => Uint8Array.of(b));
  t.deepEqual(decode(bytes), CORPUS_EXPECTED);
});

test('one byte at a time with empty chunks in between decodes identically', (t) => {
  const chunks: Uint8Array[] = [];
  for (const b of CORPUS) chunks.push(new Uint8Array(0), Uint8Array.of(b));
  chunks.push(new Uint8Array(0));
  t.deepEqual(decode(chunks), CORPUS_EXPECTED);
});

test('property: random re-chunkings decode identically', (t) => {
  const n = CORPUS.length;
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: n }), { maxLength: 40 }), fc.boolean(), (cuts, iso) => {
      const sorted = [...cuts].sort((a, b) => a - b);
      let chunks = cut(CORPUS, sorted);
      if (iso) chunks = chunks.map((c) => isolate(c));
      return JSON.stringify(decode(chunks)) === JSON.stringify(CORPUS_EXPECTED);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------
// Property: encode → concat → decode is the identity
// ---------------------------------------------------------------------------

const int31 = fc.integer({ min: 0, max: MAX_INT31 });
const uint32 = fc.integer({ min: 0, max: MAX_UINT32 });

type Spec =
  | { kind: 'data'; type: DataKeyword; channel: number; msgno: number; more: boolean; seqno: number; ansno: number; parts: Uint8Array[] }
  | { kind: 'seq'; channel: number; ackno: number; window: number };

const dataSpec: fc.Arbitrary<Spec> = fc
  .record({
    type: fc.constantFrom<DataKeyword>('MSG', 'RPY', 'ERR', 'ANS', 'NUL'),
    channel: int31,
    msgno: int31,
    more: fc.boolean(),
    seqno: uint32,
    ansno: int31,
    parts: fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 3 }),
  })
  .map((r): Spec => ({ kind: 'data', ...r, ...(r.type === 'NUL' ? { more: false, parts: [] } : {}) }));
const seqSpec: fc.Arbitrary<Spec> = fc.record({ channel: int31, ackno: uint32, window: int31 }).map((r): Spec => ({ kind: 'seq', ...r }));
const specArb = fc.oneof({ weight: 4, arbitrary: dataSpec }, { weight: 1, arbitrary: seqSpec });

function encodeSpec(s: Spec): Uint8Array[] {
  if (s.kind === 'seq') return [encodeSeqFrame(s.channel, s.ackno, s.window)];
  const f = { type: s.type, channel: s.channel, msgno: s.msgno, more: s.more, seqno: s.seqno, ...(s.type === 'ANS' ? { ansno: s.ansno } : {}) };
  return encodeDataFrame(f, s.parts);
}
function expectSpec(s: Spec): Normal {
  if (s.kind === 'seq') return seqF(s.channel, s.ackno, s.window);
  const payload = Buffer.concat(s.parts);
  const o: Normal = { type: s.type, channel: s.channel, msgno: s.msgno, more: s.more, seqno: s.seqno, size: payload.length };
  if (s.type === 'ANS') o['ansno'] = s.ansno;
  o['payload'] = payload.toString('hex');
  return o;
}

test('property: decode(concat(encode(frames))) yields the same frames', (t) => {
  fc.assert(
    fc.property(fc.array(specArb, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (specs, rawCuts) => {
      const bytes = Buffer.concat(specs.flatMap(encodeSpec));
      const expected = specs.map(expectSpec);
      const whole = decode([bytes]);
      const cuts = rawCuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
      const chunked = decode(cut(bytes, cuts));
      const want = JSON.stringify(expected);
      return JSON.stringify(whole) === want && JSON.stringify(chunked) === want;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('identity at the extremes of every field', (t) => {
  const specs: Spec[] = [
    { kind: 'data', type: 'MSG', channel: MAX_INT31, msgno: MAX_INT31, more: true, seqno: MAX_UINT32, ansno: 0, parts: [latin1('x')] },
    { kind: 'data', type: 'ANS', channel: 0, msgno: 0, more: false, seqno: 0, ansno: MAX_INT31, parts: [] },
    { kind: 'data', type: 'NUL', channel: MAX_INT31, msgno: MAX_INT31, more: false, seqno: MAX_UINT32, ansno: 0, parts: [] },
    { kind: 'seq', channel: MAX_INT31, ackno: MAX_UINT32, window: MAX_INT31 },
    { kind: 'seq', channel: 0, ackno: 0, window: 0 },
  ];
  t.deepEqual(decode([Buffer.concat(specs.flatMap(encodeSpec))]), specs.map(expectSpec));
});

// ---------------------------------------------------------------------------
// Property: hostile input only ever raises BeepFramingError, and sticks
// ---------------------------------------------------------------------------

const DECODER_CODES = new Set<string>([ErrorCodes.FRAME_SYNTAX, ErrorCodes.HEADER_TOO_LONG, ErrorCodes.FRAME_TOO_LARGE]);

/**
 * Feed chunks; every throw must be a BeepFramingError with a decoder code, the
 * first error must be rethrown (same object) by every later push, and
 * delivered frames must be self-consistent. Returns a description of the
 * first violation, or null.
 */
function hostileRun(chunks: readonly Uint8Array[], options?: DecoderOptions): string | null {
  const dec = new FrameDecoder(options);
  let first: BeepFramingError | null = null;
  const onFrame = (f: Frame): void => {
    if (first) throw new Error('frame delivered after failure');
    if (f.type !== 'SEQ' && f.payload.byteLength !== f.size) throw new Error('payload length differs from size');
  };
  for (const c of chunks) {
    try {
      dec.push(c, onFrame);
      if (first) return 'push succeeded after a failure';
    } catch (err) {
      if (!(err instanceof BeepFramingError)) return `threw a non-BeepFramingError: ${String(err)}`;
      if (!DECODER_CODES.has(err.code)) return `unexpected code ${err.code}: ${err.message}`;
      if (first && err !== first) return 'a later push threw a different error object';
      first = err;
    }
  }
  if (first) {
    for (const extra of [new Uint8Array(0), latin1('SEQ 0 0 0\r\n'), latin1('MSG 0 0 . 0 0\r\nEND\r\n')]) {
      try {
        dec.push(extra, onFrame);
        return 'push after failure did not throw';
      } catch (err) {
        if (err !== first) return 'push after failure threw a different error object';
      }
    }
    if (dec.idle) return 'failed decoder claims to be idle';
  }
  return null;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });
const applyCuts = (bytes: Uint8Array, raw: readonly number[]): Uint8Array[] =>
  cut(bytes, raw.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b));
const optionsArb: fc.Arbitrary<DecoderOptions | undefined> = fc.option(
  fc.record({ maxHeaderLine: fc.integer({ min: 1, max: 128 }), maxFrameSize: fc.integer({ min: 0, max: 4096 }) }, { requiredKeys: [] }),
  { nil: undefined },
);
/** Byte soup biased towards the frame grammar, so that it gets past the keyword. */
const grammarSoup = fc
  .array(fc.constantFrom('MSG ', 'RPY ', 'ERR ', 'ANS ', 'NUL ', 'SEQ ', 'END', '\r\n', '\r', '\n', ' ', '.', '*', '0', '1', '9', '12', '4294967295', '2147483648', 'x', '\x00', '\xff'), {
    maxLength: 60,
  })
  .map((a) => latin1(a.join('')));

test('property: arbitrary bytes in arbitrary chunkings only raise BeepFramingError, and the error sticks', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), grammarSoup), cutsArb, optionsArb, (bytes, raw, options) => {
      const problem = hostileRun(applyCuts(bytes, raw), options);
      if (problem) throw new Error(problem);
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

type Mutation = { kind: 'flip' | 'insert' | 'delete' | 'set'; pos: number; byte: number; bit: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom<Mutation['kind']>('flip', 'insert', 'delete', 'set'),
  pos: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
  bit: fc.integer({ min: 0, max: 7 }),
});
function mutate(bytes: Uint8Array, muts: readonly Mutation[]): Uint8Array {
  const a = [...bytes];
  for (const m of muts) {
    if (a.length === 0 && m.kind !== 'insert') continue;
    const i = m.pos % (m.kind === 'insert' ? a.length + 1 : a.length);
    if (m.kind === 'flip') a[i] = (a[i] ?? 0) ^ (1 << m.bit);
    else if (m.kind === 'set') a[i] = m.byte;
    else if (m.kind === 'insert') a.splice(i, 0, m.byte);
    else a.splice(i, 1);
  }
  return Uint8Array.from(a);
}

test('property: mutated valid encodings (flip/insert/delete) only raise BeepFramingError, and the error sticks', (t) => {
  fc.assert(
    fc.property(
      fc.array(specArb, { minLength: 1, maxLength: 4 }),
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      cutsArb,
      optionsArb,
      (specs, muts, raw, options) => {
        const bytes = mutate(Buffer.concat(specs.flatMap(encodeSpec)), muts);
        const problem = hostileRun(applyCuts(bytes, raw), options);
        if (problem) throw new Error(problem);
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('after the first error every further push rethrows the same error object', (t) => {
  const dec = new FrameDecoder();
  const err = expectFramingError(t, () => dec.push(latin1('BAD 0 0 . 0 0\r\n'), () => t.fail()), ErrorCodes.FRAME_SYNTAX);
  for (const more of [latin1('MSG 0 0 . 0 0\r\nEND\r\n'), new Uint8Array(0), latin1('SEQ 0 0 0\r\n')]) {
    const again = t.throws(() => dec.push(more, () => t.fail()));
    t.truthy(err);
    t.is<unknown, unknown>(again, err);
  }
  t.false(dec.idle);
});

// ---------------------------------------------------------------------------
// Payload views and copies
// ---------------------------------------------------------------------------

function only(chunks: readonly Uint8Array[]): DataFrame {
  const frames: Frame[] = [];
  const dec = new FrameDecoder();
  for (const c of chunks) dec.push(c, (f) => frames.push(f));
  if (frames.length !== 1 || frames[0]?.type === 'SEQ') throw new Error('expected exactly one data frame');
  return frames[0] as DataFrame;
}

test('a payload lying entirely in one chunk is a view into that chunk', (t) => {
  const chunk = isolate(latin1('MSG 0 0 . 0 5\r\nhelloEND\r\n'));
  const f = only([chunk]);
  t.is(f.payload.buffer, chunk.buffer);
  t.is(f.payload.byteOffset, chunk.byteOffset + 15);
  t.is(f.payload.byteLength, 5);
  t.is(text(f.payload), 'hello');
  chunk[15] = 0x4a; // 'J': writes through, so it really is a view
  t.is(text(f.payload), 'Jello');
});

test('a plain Uint8Array chunk (not a Buffer) also yields a view', (t) => {
  const chunk = new Uint8Array(latin1('xxMSG 0 0 . 0 3\r\nabcEND\r\n')).subarray(2);
  t.false(Buffer.isBuffer(chunk));
  const f = only([chunk]);
  t.is(f.payload.buffer, chunk.buffer);
  t.is(f.payload.byteOffset, chunk.byteOffset + 15);
  t.is(text(f.payload), 'abc');
});

test('payload in one chunk with header and trailer in other chunks is a view into the payload chunk', (t) => {
  const header = isolate(latin1('RPY 2 3 . 9 4\r\n'));
  const body = isolate(latin1('data'));
  const trailer = isolate(latin1('END\r\n'));
  const f = only([header, body, trailer]);
  t.is(f.payload.buffer, body.buffer);
  t.is(f.payload.byteOffset, body.byteOffset);
  t.is(text(f.payload), 'data');
  // and the trailer split off after a payload in the header's chunk
  const a = isolate(latin1('RPY 2 3 . 9 4\r\ndataEN'));
  const b = isolate(latin1('D\r\n'));
  const g = only([a, b]);
  t.is(g.payload.buffer, a.buffer);
  t.is(g.payload.byteOffset, a.byteOffset + 15);
});

test('a payload spanning chunks is one copied buffer with the right bytes', (t) => {
  const c1 = isolate(latin1('MSG 0 0 . 0 10\r\nhel'));
  const c2 = isolate(latin1('lowo'));
  const c3 = isolate(latin1('rldEND\r\n'));
  const f = only([c1, c2, c3]);
  t.is(f.payload.byteLength, 10);
  t.is(text(f.payload), 'helloworld');
  for (const c of [c1, c2, c3]) t.not(f.payload.buffer, c.buffer);
  // independent of the input: overwrite the inputs, the payload is unchanged
  for (const c of [c1, c2, c3]) c.fill(0x21);
  t.is(text(f.payload), 'helloworld');
});

test('a spanning binary payload is copied exactly (every byte value)', (t) => {
  const payload = new Uint8Array(256);
  for (let i = 0; i < 256; i++) payload[i] = i;
  const bytes = Buffer.concat([latin1('ANS 1 2 . 3 256 4\r\n'), payload, latin1('END\r\n')]);
  for (const at of [19, 20, 100, 274]) {
    const f = only(cut(bytes, [at]).map((c) => isolate(c)));
    t.deepEqual([...f.payload], [...payload], `split at ${at}`);
  }
});

test('empty payloads are zero-length', (t) => {
  const f = only([latin1('NUL 1 1 . 0 0\r\nEND\r\n')]);
  t.is(f.payload.byteLength, 0);
});

// ---------------------------------------------------------------------------
// Limits and errors at header time
// ---------------------------------------------------------------------------

test('default limits', (t) => {
  t.is(DEFAULT_DECODER_LIMITS.maxHeaderLine, 128);
  t.is(DEFAULT_DECODER_LIMITS.maxFrameSize, 8 * 1024 * 1024);
  t.true(Object.isFrozen(DEFAULT_DECODER_LIMITS));
});

test('header line over maxHeaderLine is rejected before any LF arrives', (t) => {
  const dec = new FrameDecoder({ maxHeaderLine: 128 });
  const junk = latin1(`MSG ${'1'.repeat(196)}`);
  t.is(junk.length, 200);
  t.false(junk.includes(0x0a));
  expectFramingError(t, () => dec.push(junk, () => t.fail()), ErrorCodes.HEADER_TOO_LONG);
});

test('header line over maxHeaderLine fed in small chunks is rejected as soon as it is too long', (t) => {
  const dec = new FrameDecoder({ maxHeaderLine: 128 });
  const piece = latin1('MSG 111111'); // 10 octets, no LF
  // 12 pieces = 120 octets: still fine (could be a header of up to 128 + CR)
  for (let i = 0; i < 12; i++) dec.push(piece, () => t.fail());
  // the 13th makes 130 > 128 + 1
  expectFramingError(t, () => dec.push(piece, () => t.fail()), ErrorCodes.HEADER_TOO_LONG);
});

test('with the default limit a 200-octet header without LF is rejected', (t) => {
  expectFramingError(t, () => new FrameDecoder().push(latin1(`RPY ${'9'.repeat(196)}`), () => t.fail()), ErrorCodes.HEADER_TOO_LONG);
});

test('maxHeaderLine boundary: exactly maxHeaderLine octets is accepted, one more is not', (t) => {
  const line = 'MSG 0 0 . 0 0'; // 13 octets
  t.deepEqual(decode([latin1(`${line}\r\nEND\r\n`)], { maxHeaderLine: 13 }), [dataF('MSG', 0, 0, false, 0, '')]);
  // byte at a time, the CR may be pending at the limit
  t.deepEqual(
    decode([...latin1(`${line}\r\nEND\r\n`)].map((b) => Uint8Array.of(b)), { maxHeaderLine: 13 }),
    [dataF('MSG', 0, 0, false, 0, '')],
  );
  expectFramingError(t, () => decode([latin1(`${line}\r\nEND\r\n`)], { maxHeaderLine: 12 }), ErrorCodes.HEADER_TOO_LONG);
  // no LF yet: 14 octets pending is fine at limit 13 (the 14th may be the CR), 15 is not
  const dec = new FrameDecoder({ maxHeaderLine: 13 });
  dec.push(latin1('MSG 0 0 . 0 00'), () => t.fail());
  expectFramingError(t, () => dec.push(latin1('0'), () => t.fail()), ErrorCodes.HEADER_TOO_LONG);
});

test('frame size over maxFrameSize is rejected when only the header has been fed', (t) => {
  const dec = new FrameDecoder({ maxFrameSize: 100 });
  const headerOnly = latin1('MSG 1 0 . 0 101\r\n');
  expectFramingError(t, () => dec.push(headerOnly, () => t.fail()), ErrorCodes.FRAME_TOO_LARGE);
  // the default limit, with a size the RFC allows
  expectFramingError(t, () => new FrameDecoder().push(latin1('RPY 1 0 . 0 2147483647\r\n'), () => t.fail()), ErrorCodes.FRAME_TOO_LARGE);
  expectFramingError(
    t,
    () => new FrameDecoder().push(latin1(`ANS 1 0 . 0 ${8 * 1024 * 1024 + 1} 0\r\n`), () => t.fail()),
    ErrorCodes.FRAME_TOO_LARGE,
  );
});

test('frame size equal to maxFrameSize is accepted; SEQ windows are not frame sizes', (t) => {
  const payload = 'p'.repeat(100);
  t.deepEqual(decode([latin1(`MSG 1 0 . 0 100\r\n${payload}END\r\n`)], { maxFrameSize: 100 }), [dataF('MSG', 1, 0, false, 0, payload)]);
  t.deepEqual(decode([latin1('SEQ 1 0 2147483647\r\n')], { maxFrameSize: 100 }), [seqF(1, 0, MAX_INT31)]);
  t.deepEqual(decode([latin1('MSG 1 0 . 0 0\r\nEND\r\n')], { maxFrameSize: 0 }), [dataF('MSG', 1, 0, false, 0, '')]);
});

test('onHeader is called with the header before the payload is read', (t) => {
  const events: string[] = [];
  const headers: FrameHeader[] = [];
  const dec = new FrameDecoder({
    onHeader: (h) => {
      events.push('header');
      headers.push(h);
    },
  });
  const onFrame = (): void => {
    events.push('frame');
  };
  dec.push(latin1('MSG 4 5 * 6 7\r\n'), onFrame);
  t.deepEqual(events, ['header']);
  t.deepEqual(headers, [{ type: 'MSG', channel: 4, msgno: 5, more: true, seqno: 6, size: 7 }]);
  dec.push(latin1('payl'), onFrame);
  t.deepEqual(events, ['header']);
  dec.push(latin1('oadEND\r\n'), onFrame);
  t.deepEqual(events, ['header', 'frame']);
  dec.push(latin1('SEQ 4 7 100\r\nANS 4 5 . 13 0 9\r\n'), onFrame);
  t.deepEqual(events, ['header', 'frame', 'header', 'frame', 'header']);
  t.deepEqual(headers.slice(1), [
    { type: 'SEQ', channel: 4, ackno: 7, window: 100 },
    { type: 'ANS', channel: 4, msgno: 5, more: false, seqno: 13, size: 0, ansno: 9 },
  ]);
});

test('an error thrown by onHeader propagates out of push and fails the decoder', (t) => {
  const refusal = new BeepFramingError(ErrorCodes.WINDOW_OVERRUN, 'window exceeded');
  let payloadSeen = false;
  const frames: Frame[] = [];
  const dec = new FrameDecoder({
    onHeader: (h) => {
      if (h.type !== 'SEQ' && h.size > 4) throw refusal;
    },
  });
  const err = t.throws(() =>
    dec.push(latin1('MSG 1 0 . 0 1\r\naEND\r\nMSG 1 1 . 1 5\r\nhelloEND\r\n'), (f) => {
      frames.push(f);
      if (f.type !== 'SEQ' && text(f.payload) === 'hello') payloadSeen = true;
    }),
  );
  t.is(err, refusal, 'the very error object thrown by onHeader');
  t.is(frames.length, 1, 'the frame before it was delivered');
  t.false(payloadSeen);
  t.is(t.throws(() => dec.push(latin1('SEQ 0 0 0\r\n'), () => t.fail())), refusal);
});

test('a non-BeepFramingError thrown by onHeader is wrapped, with the original as cause', (t) => {
  const boom = new Error('boom');
  const dec = new FrameDecoder({
    onHeader: () => {
      throw boom;
    },
  });
  const err = t.throws<BeepFramingError>(() => dec.push(latin1('SEQ 1 2 3\r\n'), () => t.fail()), { instanceOf: BeepFramingError });
  t.is(err?.cause, boom);
  t.is(err?.code, ErrorCodes.PROTOCOL);
  t.is(t.throws(() => dec.push(new Uint8Array(0), () => t.fail())), err);
});

test('a garbage keyword is rejected after its first 3 octets, without waiting for LF', (t) => {
  for (const kw of ['XYZ', 'msg', 'Msg', 'END', 'MS ', ' MS', '\rMS', 'SE\r', '\x00\x00\x00']) {
    const dec = new FrameDecoder();
    dec.push(latin1(kw.slice(0, 2)), () => t.fail());
    expectFramingError(t, () => dec.push(latin1(kw.slice(2)), () => t.fail()), ErrorCodes.FRAME_SYNTAX, JSON.stringify(kw));
  }
  // in one chunk as well
  expectFramingError(t, () => new FrameDecoder().push(latin1('GET / HTTP/1.1'), () => t.fail()), ErrorCodes.FRAME_SYNTAX);
  // valid keywords without LF are fine
  for (const kw of ['MSG', 'RPY', 'ERR', 'ANS', 'NUL', 'SEQ', 'MSG 0 0 .']) {
    const dec = new FrameDecoder();
    t.notThrows(() => dec.push(latin1(kw), () => t.fail()), kw);
    t.false(dec.idle);
  }
});

test('a garbage keyword after a good frame is rejected after 3 octets; the good frame was delivered', (t) => {
  const frames: Normal[] = [];
  const dec = new FrameDecoder();
  expectFramingError(t, () => dec.push(latin1('SEQ 1 0 10\r\nFOO'), (f) => frames.push(normal(f))), ErrorCodes.FRAME_SYNTAX);
  t.deepEqual(frames, [seqF(1, 0, 10)]);
});

test('a header ended by a bare LF (no CR) is rejected', (t) => {
  expectFramingError(t, () => decode([latin1('MSG 0 0 . 0 0\nEND\r\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('SEQ 0 0 0\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('MSG 0 0 . 0 0'), latin1('\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('\n')]), ErrorCodes.FRAME_SYNTAX);
  // lines that would still parse if the octet before the LF were dropped unchecked
  expectFramingError(t, () => decode([latin1('SEQ 0 0 10\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('MSG 0 0 . 0 10\nxEND\r\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('SEQ 0 0 10'), latin1('\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('\r\n')]), ErrorCodes.FRAME_SYNTAX);
  expectFramingError(t, () => decode([latin1('MSG 0 0 . 0 0\r\r\n')]), ErrorCodes.FRAME_SYNTAX);
});

test('a syntactically bad header line is rejected with FRAME_SYNTAX', (t) => {
  for (const h of ['MSG 0 0 . 0 01', 'NUL 0 0 * 0 0', 'SEQ 0 0', 'MSG  0 0 . 0 0', 'ANS 0 0 . 0 0', 'RPY 0 0 . 4294967296 0']) {
    expectFramingError(t, () => decode([latin1(`${h}\r\nEND\r\n`)]), ErrorCodes.FRAME_SYNTAX, h);
  }
});

test('bad trailers are rejected with FRAME_SYNTAX', (t) => {
  const cases: Record<string, string> = {
    'ENX instead of END': 'MSG 0 0 . 0 3\r\nabcENX\r\n',
    'lower-case end': 'MSG 0 0 . 0 3\r\nabcend\r\n',
    'END with bare LF': 'MSG 0 0 . 0 3\r\nabcEND\n',
    'END with CR CR': 'MSG 0 0 . 0 3\r\nabcEND\r\r',
    'missing trailer, next frame follows': 'MSG 0 0 . 0 3\r\nabcMSG 0 1 . 3 0\r\nEND\r\n',
    'payload longer than size': 'MSG 0 0 . 0 3\r\nabcdEND\r\n',
    'payload shorter than size': 'MSG 0 0 . 0 5\r\nabcEND\r\nSEQ 0 0 0\r\n',
    'empty frame without trailer': 'RPY 0 0 . 0 0\r\nRPY 0 1 . 0 0\r\nEND\r\n',
    'space before END': 'NUL 0 0 . 0 0\r\n END\r\n',
  };
  for (const [name, s] of Object.entries(cases)) {
    expectFramingError(t, () => decode([latin1(s)]), ErrorCodes.FRAME_SYNTAX, name);
    // and byte at a time
    expectFramingError(t, () => decode([...latin1(s)].map((b) => Uint8Array.of(b))), ErrorCodes.FRAME_SYNTAX, `${name} (bytewise)`);
  }
});

test('a bad trailer octet is rejected as soon as it arrives', (t) => {
  const dec = new FrameDecoder();
  dec.push(latin1('MSG 0 0 . 0 3\r\nabcEN'), () => t.fail());
  const err = expectFramingError(t, () => dec.push(latin1('X'), () => t.fail()), ErrorCodes.FRAME_SYNTAX);
  t.is(err?.offset, 20, 'offset of the bad octet in the stream');
  t.is(err?.origin, 'remote');
});

test('frames decoded before an error in the same chunk were delivered', (t) => {
  const frames: Normal[] = [];
  const dec = new FrameDecoder();
  const input = latin1('MSG 1 0 . 0 2\r\nhiEND\r\nSEQ 1 2 4096\r\nRPY 1 0 . 0 0\r\nEND\r\nMSG 1 1 . 2 1\r\nxENDX');
  expectFramingError(t, () => dec.push(input, (f) => frames.push(normal(f))), ErrorCodes.FRAME_SYNTAX);
  t.deepEqual(frames, [dataF('MSG', 1, 0, false, 0, 'hi'), seqF(1, 2, 4096), dataF('RPY', 1, 0, false, 0, '')]);
});

test('offset counts consumed octets; idle is true only at frame boundaries', (t) => {
  const dec = new FrameDecoder();
  const noop = (): void => {};
  t.true(dec.idle);
  t.is(dec.offset, 0);
  dec.push(latin1('MS'), noop);
  t.false(dec.idle);
  dec.push(latin1('G 0 0 . 0 1\r\n'), noop);
  t.false(dec.idle);
  dec.push(latin1('zEND\r'), noop);
  t.false(dec.idle);
  dec.push(latin1('\n'), noop);
  t.true(dec.idle);
  t.is(dec.offset, 'MSG 0 0 . 0 1\r\nzEND\r\n'.length);
  dec.push(latin1('SEQ 0 1 1\r\n'), noop);
  t.true(dec.idle);
  t.is(dec.offset, 'MSG 0 0 . 0 1\r\nzEND\r\nSEQ 0 1 1\r\n'.length);
});

test('reuseFrame (streaming): every data frame comes in one object, with the right fields each time; SEQ frames as before', (t) => {
  const seen: { type: string; channel: number; msgno: number; more: boolean; seqno: number; size: number; ansno: number | undefined; payloadLength: number }[] = [];
  const objects = new Set<object>();
  let parts = 0;
  const dec = new FrameDecoder({ onPayload: () => void parts++, reuseFrame: true });
  const wire = Buffer.from('MSG 1 2 * 0 3\r\nabcEND\r\nSEQ 1 0 4096\r\nANS 3 4 . 10 2 7\r\nxyEND\r\nNUL 3 4 . 12 0\r\nEND\r\n', 'latin1');
  dec.push(wire, (f) => {
    if (f.type === 'SEQ') {
      t.is(f.window, 4096);
      return;
    }
    objects.add(f);
    seen.push({ type: f.type, channel: f.channel, msgno: f.msgno, more: f.more, seqno: f.seqno, size: f.size, ansno: f.type === 'ANS' ? f.ansno : (f as { ansno?: number }).ansno, payloadLength: f.payload.length });
  });
  t.is(objects.size, 1, 'one object for all three data frames');
  t.deepEqual(seen, [
    { type: 'MSG', channel: 1, msgno: 2, more: true, seqno: 0, size: 3, ansno: undefined, payloadLength: 0 },
    { type: 'ANS', channel: 3, msgno: 4, more: false, seqno: 10, size: 2, ansno: 7, payloadLength: 0 },
    { type: 'NUL', channel: 3, msgno: 4, more: false, seqno: 12, size: 0, ansno: undefined, payloadLength: 0 },
  ]);
  t.is(parts, 2);
  // Without onPayload the option does nothing: each frame is its own object, with its payload.
  const plain = new FrameDecoder({ reuseFrame: true });
  const frames: object[] = [];
  plain.push(Buffer.from('MSG 1 2 . 0 1\r\naEND\r\nMSG 1 3 . 1 1\r\nbEND\r\n', 'latin1'), (f) => void frames.push(f));
  t.is(new Set(frames).size, 2);
});
