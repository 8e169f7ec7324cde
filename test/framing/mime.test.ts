import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import { BeepFramingError, ErrorCodes } from '../../src/errors.js';
import {
  BEEP_XML,
  DEFAULT_CONTENT_TYPE,
  DEFAULT_TRANSFER_ENCODING,
  encodeEntityHeaders,
  mediaType,
  parseEntityHeaders,
  type ParsedEntity,
} from '../../src/framing/index.js';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function parseOk(s: string | Uint8Array, final = true, max?: number): ParsedEntity {
  const r = parseEntityHeaders(typeof s === 'string' ? latin1(s) : s, final, max);
  if (r === null) throw new Error(`unexpected null for ${JSON.stringify(typeof s === 'string' ? s : text(s))}`);
  return r;
}

// ---------------------------------------------------------------------------
// encodeEntityHeaders
// ---------------------------------------------------------------------------

test('constants', (t) => {
  t.is(DEFAULT_CONTENT_TYPE, 'application/octet-stream');
  t.is(DEFAULT_TRANSFER_ENCODING, 'binary');
  t.is(BEEP_XML, 'application/beep+xml');
});

test('encodeEntityHeaders with defaults is exactly CRLF', (t) => {
  t.is(text(encodeEntityHeaders()), '\r\n');
  t.is(text(encodeEntityHeaders({})), '\r\n');
  t.is(text(encodeEntityHeaders({ contentType: 'application/octet-stream', transferEncoding: 'binary' })), '\r\n');
  t.is(text(encodeEntityHeaders({ contentType: 'Application/Octet-Stream', transferEncoding: 'BINARY' })), '\r\n');
  t.is(text(encodeEntityHeaders({ headers: {} })), '\r\n');
});

test('encodeEntityHeaders beep+xml', (t) => {
  t.is(text(encodeEntityHeaders({ contentType: BEEP_XML })), 'Content-Type: application/beep+xml\r\n\r\n');
  t.is(text(encodeEntityHeaders({ contentType: BEEP_XML, transferEncoding: 'binary' })), 'Content-Type: application/beep+xml\r\n\r\n');
});

test('encodeEntityHeaders custom headers', (t) => {
  t.is(
    text(encodeEntityHeaders({ contentType: 'text/plain; charset=utf-8', transferEncoding: 'base64' })),
    'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  );
  t.is(text(encodeEntityHeaders({ transferEncoding: 'base64' })), 'Content-Transfer-Encoding: base64\r\n\r\n');
  t.is(
    text(encodeEntityHeaders({ contentType: BEEP_XML, headers: { 'X-Trace': 'abc 123', 'Content-Language': 'en' } })),
    'Content-Type: application/beep+xml\r\nX-Trace: abc 123\r\nContent-Language: en\r\n\r\n',
  );
  t.is(text(encodeEntityHeaders({ headers: { 'X-A': '' } })), 'X-A: \r\n\r\n');
});

test('encodeEntityHeaders output round-trips through parseEntityHeaders', (t) => {
  const enc = encodeEntityHeaders({ contentType: 'text/plain; charset=utf-8', transferEncoding: 'base64', headers: { 'X-Id': '42' } });
  const body = latin1('aGVsbG8=');
  const p = parseOk(Buffer.concat([enc, body]));
  t.is(p.contentType, 'text/plain; charset=utf-8');
  t.is(p.transferEncoding, 'base64');
  t.is(p.headers['x-id'], '42');
  t.is(p.bodyOffset, enc.byteLength);
});

test('encodeEntityHeaders rejects CR/LF/NUL injection in values', (t) => {
  const values = ['text/plain\r\nX-Evil: 1', 'text/plain\nX-Evil: 1', 'text/plain\rX', 'a\u0000b', '\r\n'];
  for (const v of values) {
    t.throws(() => encodeEntityHeaders({ contentType: v }), { instanceOf: TypeError }, JSON.stringify(v));
    t.throws(() => encodeEntityHeaders({ transferEncoding: v }), { instanceOf: TypeError }, JSON.stringify(v));
    t.throws(() => encodeEntityHeaders({ headers: { 'X-Ok': v } }), { instanceOf: TypeError }, JSON.stringify(v));
  }
});

test('encodeEntityHeaders rejects invalid header names', (t) => {
  const names = ['', 'X Bad', 'X:Bad', 'X\r\nEvil', 'X\nY', 'Ümlaut', 'a(b)', 'a@b', 'a/b', 'a\tb'];
  for (const name of names) {
    t.throws(() => encodeEntityHeaders({ headers: { [name]: 'v' } }), { instanceOf: TypeError }, JSON.stringify(name));
  }
});

// ---------------------------------------------------------------------------
// parseEntityHeaders
// ---------------------------------------------------------------------------

test('parseEntityHeaders: CRLF-only header block gives defaults, bodyOffset 2', (t) => {
  t.deepEqual(parseOk('\r\nbody'), {
    contentType: DEFAULT_CONTENT_TYPE,
    transferEncoding: DEFAULT_TRANSFER_ENCODING,
    headers: {},
    bodyOffset: 2,
  });
  t.deepEqual(parseOk('\r\n'), {
    contentType: DEFAULT_CONTENT_TYPE,
    transferEncoding: DEFAULT_TRANSFER_ENCODING,
    headers: {},
    bodyOffset: 2,
  });
  // not final, but the (empty) header block is complete
  t.is(parseOk('\r\n', false).bodyOffset, 2);
});

test('parseEntityHeaders: empty message gives defaults when final, null otherwise', (t) => {
  t.is(parseEntityHeaders(new Uint8Array(0), false), null);
  t.deepEqual(parseOk(new Uint8Array(0)), {
    contentType: DEFAULT_CONTENT_TYPE,
    transferEncoding: DEFAULT_TRANSFER_ENCODING,
    headers: {},
    bodyOffset: 0,
  });
});

test('parseEntityHeaders parses Content-Type and Content-Transfer-Encoding', (t) => {
  const msg = 'Content-Type: application/beep+xml\r\nContent-Transfer-Encoding: base64\r\n\r\nPGdyZWV0aW5nLz4=';
  const p = parseOk(msg);
  t.is(p.contentType, 'application/beep+xml');
  t.is(p.transferEncoding, 'base64');
  t.deepEqual(p.headers, { 'content-type': 'application/beep+xml', 'content-transfer-encoding': 'base64' });
  t.is(p.bodyOffset, msg.indexOf('PGdy'));
});

test('parseEntityHeaders header names are case-insensitive', (t) => {
  for (const [ct, cte] of [
    ['content-type', 'content-transfer-encoding'],
    ['CONTENT-TYPE', 'CONTENT-TRANSFER-ENCODING'],
    ['cOnTeNt-TyPe', 'Content-transfer-Encoding'],
  ] as const) {
    const p = parseOk(`${ct}: text/plain\r\n${cte}: quoted-printable\r\n\r\nx`);
    t.is(p.contentType, 'text/plain', ct);
    t.is(p.transferEncoding, 'quoted-printable', cte);
    t.true('content-type' in p.headers);
  }
});

test('parseEntityHeaders: only one header present → the other defaults', (t) => {
  const a = parseOk('Content-Type: text/plain\r\n\r\nhi');
  t.is(a.contentType, 'text/plain');
  t.is(a.transferEncoding, DEFAULT_TRANSFER_ENCODING);
  t.is(a.bodyOffset, 28);
  const b = parseOk('Content-Transfer-Encoding: base64\r\n\r\n');
  t.is(b.contentType, DEFAULT_CONTENT_TYPE);
  t.is(b.transferEncoding, 'base64');
  t.is(b.bodyOffset, 37);
});

test('parseEntityHeaders: whitespace around the colon and value is trimmed, other headers kept', (t) => {
  const p = parseOk('Content-Type :   text/plain  \r\nX-Custom:\tv1\r\n\r\n');
  t.is(p.contentType, 'text/plain');
  t.is(p.headers['x-custom'], 'v1');
});

test('parseEntityHeaders bodyOffset is a byte offset even with non-ASCII header values', (t) => {
  const head = Buffer.from('X-Name: Grüße\r\n\r\n', 'utf8');
  const msg = Buffer.concat([head, latin1('BODY')]);
  const p = parseOk(msg);
  t.is(p.bodyOffset, head.byteLength);
  t.is(text(msg.subarray(p.bodyOffset)), 'BODY');
  t.is(p.headers['x-name'], 'Grüße');
});

test('parseEntityHeaders returns null when incomplete and not final', (t) => {
  for (const partial of ['C', 'Content-Ty', 'Content-Type', 'Content-Type:', 'Content-Type: appl', 'Content-Type: text/plain\r', 'Content-Type: text/plain\r\n', 'Content-Type: text/plain\r\n\r', '\r']) {
    t.is(parseEntityHeaders(latin1(partial), false), null, JSON.stringify(partial));
  }
});

test('parseEntityHeaders: headers split over successive calls give the same result once complete', (t) => {
  const msg = latin1('Content-Type: application/beep+xml\r\nX-A: b\r\n\r\n<ok />\r\n');
  const full = parseOk(msg);
  const end = full.bodyOffset;
  for (let i = 0; i < end; i++) {
    t.is(parseEntityHeaders(msg.subarray(0, i), false), null, `prefix ${i}`);
  }
  for (let i = end; i <= msg.length; i++) {
    t.deepEqual(parseEntityHeaders(msg.subarray(0, i), false), full, `prefix ${i}`);
  }
});

test('parseEntityHeaders liberal: bare-LF line ends', (t) => {
  const msg = 'Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nQUJD';
  const p = parseOk(msg);
  t.is(p.contentType, 'text/plain');
  t.is(p.transferEncoding, 'base64');
  t.is(p.bodyOffset, msg.indexOf('QUJD'));
  // a bare LF alone is an empty header block
  const q = parseOk('\nbody');
  t.is(q.bodyOffset, 1);
  t.is(q.contentType, DEFAULT_CONTENT_TYPE);
  // CRLF header line followed by a bare-LF empty line
  const r = parseOk('Content-Type: text/plain\r\n\nX');
  t.is(r.contentType, 'text/plain');
  t.is(r.bodyOffset, 27);
});

test('parseEntityHeaders liberal: bare-LF header line followed by a CRLF empty line', (t) => {
  const msg = 'Content-Type: text/plain\n\r\nX';
  const p = parseOk(msg);
  t.is(p.contentType, 'text/plain');
  t.is(p.bodyOffset, msg.indexOf('X'));
  // and incrementally: null until the empty line is complete, then the same result
  t.is(parseEntityHeaders(latin1('Content-Type: text/plain\n\r'), false), null);
  t.deepEqual(parseEntityHeaders(latin1(msg), false), p);
  // mixed ends over several lines
  const q = parseOk('A: 1\r\nB: 2\nC: 3\n\r\nbody');
  t.deepEqual(q.headers, { a: '1', b: '2', c: '3' });
  t.is(q.bodyOffset, 'A: 1\r\nB: 2\nC: 3\n\r\n'.length);
});

test('parseEntityHeaders: the first empty line ends the block, whichever line-end style it uses', (t) => {
  // An LF LF inside the body after a CRLF CRLF must not be taken as the end.
  const a = 'A: 1\r\n\r\nbody\n\nmore';
  t.is(parseOk(a).bodyOffset, 'A: 1\r\n\r\n'.length);
  // and a CRLF CRLF in the body after an LF LF end must not either
  const b = 'A: 1\n\nbody\r\n\r\nmore';
  t.is(parseOk(b).bodyOffset, 'A: 1\n\n'.length);
});

test('parseEntityHeaders liberal: folded header lines are unfolded', (t) => {
  const msg = 'Content-Type: text/plain;\r\n charset=utf-8\r\nX-Long: a\r\n\tb\r\n   c\r\n\r\nbody';
  const p = parseOk(msg);
  t.is(p.contentType, 'text/plain; charset=utf-8');
  t.is(mediaType(p.contentType), 'text/plain');
  t.is(p.headers['x-long'], 'a b c');
  t.is(p.bodyOffset, msg.indexOf('body'));
  const lf = parseOk('Content-Type: text/plain;\n  charset=x\n\n');
  t.is(lf.contentType, 'text/plain; charset=x');
});

test('parseEntityHeaders: a payload that does not start like headers is all body with defaults', (t) => {
  const defaults = { contentType: DEFAULT_CONTENT_TYPE, transferEncoding: DEFAULT_TRANSFER_ENCODING, headers: {}, bodyOffset: 0 };
  for (const s of ['<greeting/>', '<greeting />\r\n', 'hello world\r\n\r\nmore', ' Content-Type: text/plain\r\n\r\n', ': x\r\n\r\n']) {
    t.deepEqual(parseOk(s, false), defaults, JSON.stringify(s));
    t.deepEqual(parseOk(s, true), defaults, JSON.stringify(s));
  }
  const binary = new Uint8Array([0x00, 0xff, 0x10, 0x0d, 0x0a, 0x0d, 0x0a, 0x80]);
  t.deepEqual(parseOk(binary, false), defaults);
  t.deepEqual(parseOk(binary, true), defaults);
});

test('parseEntityHeaders: header-looking first line followed by a non-header line is all body', (t) => {
  const p = parseOk('Subject: hi\r\nthis is not a header\r\n\r\nbody');
  t.is(p.bodyOffset, 0);
  t.is(p.contentType, DEFAULT_CONTENT_TYPE);
  t.deepEqual(p.headers, {});
});

test('parseEntityHeaders: final message with an unterminated header-like line is all body', (t) => {
  const p = parseOk('Content-Type: text/plain', true);
  t.is(p.bodyOffset, 0);
  t.is(p.contentType, DEFAULT_CONTENT_TYPE);
});

test('parseEntityHeaders accepts any Uint8Array view (non-zero byteOffset)', (t) => {
  const backing = latin1('garbageContent-Type: text/plain\r\n\r\nBODY');
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 7, backing.byteLength - 7);
  const p = parseOk(view);
  t.is(p.contentType, 'text/plain');
  t.is(p.bodyOffset, 28);
});

test('parseEntityHeaders: header block larger than maxHeaderBytes → BEEP_ERR_MESSAGE_TOO_LARGE', (t) => {
  // terminated block, but too long
  const big = `X-Big: ${'a'.repeat(200)}\r\n\r\nbody`;
  const e1 = t.throws<BeepFramingError>(() => parseEntityHeaders(latin1(big), true, 100), { instanceOf: BeepFramingError });
  t.is(e1?.code, ErrorCodes.MESSAGE_TOO_LARGE);
  // unterminated block already over the limit, not final: no point waiting for more
  const e2 = t.throws<BeepFramingError>(() => parseEntityHeaders(latin1(`X-Big: ${'a'.repeat(200)}`), false, 100), {
    instanceOf: BeepFramingError,
  });
  t.is(e2?.code, ErrorCodes.MESSAGE_TOO_LARGE);
  // the default limit is 16 KiB
  const e3 = t.throws<BeepFramingError>(() => parseEntityHeaders(latin1(`X-Big: ${'a'.repeat(17000)}\r\n\r\n`), true), {
    instanceOf: BeepFramingError,
  });
  t.is(e3?.code, ErrorCodes.MESSAGE_TOO_LARGE);
});

test('parseEntityHeaders: header block exactly at maxHeaderBytes is accepted; a large body does not count', (t) => {
  const head = `X-A: ${'a'.repeat(20)}\r\n\r\n`;
  const p = parseOk(head + 'z'.repeat(1000), true, head.length);
  t.is(p.bodyOffset, head.length);
  t.is(p.headers['x-a'], 'a'.repeat(20));
  t.throws(() => parseEntityHeaders(latin1(head), true, head.length - 1), { instanceOf: BeepFramingError });
});

test('property: encodeEntityHeaders → parseEntityHeaders recovers content type, encoding and body offset', (t) => {
  const token = fc.stringMatching(/^[a-z][a-z0-9.+-]{0,15}$/);
  fc.assert(
    fc.property(
      fc.option(fc.tuple(token, token).map(([a, b]) => `${a}/${b}`), { nil: undefined }),
      fc.option(fc.constantFrom('base64', 'quoted-printable', '7bit', '8bit', 'binary'), { nil: undefined }),
      fc.uint8Array({ maxLength: 64 }),
      (ct, te, body) => {
        const head = encodeEntityHeaders({ contentType: ct, transferEncoding: te });
        const p = parseEntityHeaders(Buffer.concat([head, body]), true);
        return (
          p !== null &&
          p.bodyOffset === head.byteLength &&
          p.contentType.toLowerCase() === (ct ?? DEFAULT_CONTENT_TYPE).toLowerCase() &&
          p.transferEncoding.toLowerCase() === (te ?? DEFAULT_TRANSFER_ENCODING).toLowerCase()
        );
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: parseEntityHeaders never throws anything but MESSAGE_TOO_LARGE and bodyOffset stays in range', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, final) => {
      try {
        const p = parseEntityHeaders(bytes, final, 200);
        return p === null ? !final : p.bodyOffset >= 0 && p.bodyOffset <= bytes.byteLength;
      } catch (err) {
        return err instanceof BeepFramingError && err.code === ErrorCodes.MESSAGE_TOO_LARGE;
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------
// mediaType
// ---------------------------------------------------------------------------

test('mediaType strips parameters and lower-cases', (t) => {
  t.is(mediaType('application/beep+xml'), 'application/beep+xml');
  t.is(mediaType('Application/BEEP+XML'), 'application/beep+xml');
  t.is(mediaType('text/plain; charset=UTF-8'), 'text/plain');
  t.is(mediaType('  Text/Plain ;charset=x;format=flowed'), 'text/plain');
  t.is(mediaType('TEXT/HTML;'), 'text/html');
  t.is(mediaType(''), '');
});

test('the header block channel 0 sends is parsed to what the general parser makes of it, and within maxHeaderBytes', (t) => {
  const block = 'Content-Type: application/beep+xml\r\n\r\n';
  const body = '<start number="1"><profile uri="urn:x"/></start>\r\n';
  const fast = parseEntityHeaders(Buffer.from(block + body), true);
  // The same block with the name in another case goes through the general parser.
  const general = parseEntityHeaders(Buffer.from(block.replace('Content-Type', 'content-type') + body), true);
  t.deepEqual(fast, general);
  t.is(fast?.bodyOffset, block.length);
  t.deepEqual(fast?.headers, { 'content-type': 'application/beep+xml' });
  // Each message gets headers of its own.
  t.not(parseEntityHeaders(Buffer.from(block), true)?.headers, fast?.headers);
  // A prefix of it is not it: more octets are needed.
  t.is(parseEntityHeaders(Buffer.from(block.slice(0, 20)), false), null);
  // The limit still holds for it.
  t.throws(() => parseEntityHeaders(Buffer.from(block + body), true, 16), { instanceOf: BeepFramingError });
});
