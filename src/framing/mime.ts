/**
 * MIME entity headers at the start of a BEEP message (RFC 3080 §2.2).
 *
 * "If none, or only some, of the "entity-headers" are present: the default
 * "Content-Type" is "application/octet-stream"; and, the default
 * "Content-Transfer-Encoding" is "binary"."
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepFramingError, ErrorCodes } from '../errors.js';

/** Default `Content-Type` (RFC 3080 §2.2). */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** Default `Content-Transfer-Encoding` (RFC 3080 §2.2). */
export const DEFAULT_TRANSFER_ENCODING = 'binary';
/** The media type of channel 0 and of the TLS/SASL profiles (RFC 3080 §6.4). */
export const BEEP_XML = 'application/beep+xml';

/** Entity headers of a message, as sent or received. */
export interface EntityHeaders {
  /** Full `Content-Type` value, parameters included. */
  contentType?: string;
  /** `Content-Transfer-Encoding` value. */
  transferEncoding?: string;
  /** Any other headers (names as given, values unfolded). */
  headers?: Readonly<Record<string, string>>;
}

/** Entity headers parsed from a received message, with defaults applied. */
export interface ParsedEntity {
  contentType: string;
  transferEncoding: string;
  /** Every header received, names lower-cased. */
  headers: Record<string, string>;
  /** Offset in the message of the first body octet. */
  bodyOffset: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CRLF = Buffer.from('\r\n', 'latin1');
const BEEP_XML_HEAD = Buffer.from(`Content-Type: ${BEEP_XML}\r\n\r\n`, 'latin1');

function checkValue(name: string, value: string): void {
  // Header injection guard: no CR, LF or NUL in a value, and a token for a name.
  if (!TOKEN.test(name)) throw new TypeError(`invalid MIME header name ${JSON.stringify(name)}`);
  if (/[\r\n\0]/.test(value)) throw new TypeError(`invalid characters in MIME header ${name}: a header value may not contain CR, LF or NUL`);
}

const NO_ENTRIES: [string, string][] = [];

/**
 * Encode entity headers and the empty line that ends them. Defaults are
 * omitted, so a message with neither returns just CRLF.
 */
export function encodeEntityHeaders(h?: EntityHeaders): Uint8Array {
  if (h === undefined) return CRLF;
  const ct = h.contentType;
  const te = h.transferEncoding;
  const extra = h.headers ? Object.entries(h.headers) : NO_ENTRIES;
  if (extra.length === 0 && (te === undefined || te.toLowerCase() === DEFAULT_TRANSFER_ENCODING)) {
    if (ct === undefined || ct.toLowerCase() === DEFAULT_CONTENT_TYPE) return CRLF;
    if (ct === BEEP_XML) return BEEP_XML_HEAD;
  }
  let s = '';
  if (ct !== undefined && ct.toLowerCase() !== DEFAULT_CONTENT_TYPE) {
    checkValue('Content-Type', ct);
    s += `Content-Type: ${ct}\r\n`;
  }
  if (te !== undefined && te.toLowerCase() !== DEFAULT_TRANSFER_ENCODING) {
    checkValue('Content-Transfer-Encoding', te);
    s += `Content-Transfer-Encoding: ${te}\r\n`;
  }
  for (const [name, value] of extra) {
    checkValue(name, value);
    s += `${name}: ${value}\r\n`;
  }
  return Buffer.from(s + '\r\n', 'utf8');
}

/** Locate the end of the header block: index just past the empty line, or -1. */
function headerEnd(buf: Buffer): number {
  if (buf[0] === 0x0a) return 1; // liberal: bare LF
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  // The first empty line is an LF followed by CRLF (this covers CRLF CRLF, and
  // a bare-LF header line followed by a CRLF empty line) or by a bare LF.
  const lfcrlf = buf.indexOf('\n\r\n', 0, 'latin1');
  const lflf = buf.indexOf('\n\n', 0, 'latin1');
  if (lfcrlf >= 0 && (lflf < 0 || lfcrlf < lflf)) return lfcrlf + 3;
  if (lflf >= 0) return lflf + 2;
  return -1;
}

// The value runs to the end of the line: `[^\n]` rather than `.`, which stops
// at a lone CR and so would let a line's verdict change as more of it arrives.
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*([^\n]*)$/;
/** What a header value (or folded part) may not contain: the encoder could not send it back. */
const BAD_VALUE = /[\r\0]/;

/**
 * Most header lines a MIME header block may have (issue 17, the BEEP form of
 * CVE-2019-9516): thousands of empty headers within `maxEntityHeaders` would
 * make every message cost a large dictionary for nothing. BEEP messages carry
 * one or two (RFC 3080 §2.2.2). Beyond it: `BEEP_ERR_MESSAGE_TOO_LARGE`, as
 * for a block longer than `maxEntityHeaders`.
 */
export const MAX_ENTITY_HEADER_FIELDS = 128;

/**
 * The headers of every message whose header block is empty: shared, frozen.
 * Compare with `===` to know that no header was sent.
 */
export const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_BLOCK_CRLF: ParsedEntity = Object.freeze({ contentType: DEFAULT_CONTENT_TYPE, transferEncoding: DEFAULT_TRANSFER_ENCODING, headers: NO_HEADERS as Record<string, string>, bodyOffset: 2 });
const EMPTY_BLOCK_LF: ParsedEntity = Object.freeze({ ...EMPTY_BLOCK_CRLF, bodyOffset: 1 });
/** The header block of every channel-0 message and of the tuning profiles, as our encoder writes it. */
const BEEP_XML_BLOCK = Buffer.from('Content-Type: application/beep+xml\r\n\r\n', 'latin1');
const BEEP_XML_TYPE = 'application/beep+xml';

/** True when `head` starts with exactly {@link BEEP_XML_BLOCK}. */
function startsWithBeepXml(head: Uint8Array): boolean {
  const n = BEEP_XML_BLOCK.length;
  if (head.length < n) return false;
  for (let i = 0; i < n; i++) if (head[i] !== BEEP_XML_BLOCK[i]) return false;
  return true;
}

/**
 * Parse the entity headers at the start of `head` (the first octets of a
 * message). Returns `null` when more octets are needed, i.e. the header block
 * has not ended yet and `final` is false.
 *
 * Liberal in what it accepts: bare LF line ends, folded lines, any header
 * order. A message that does not start with a header line or an empty line is
 * taken as a body with default headers (some peers send no header block).
 * Throws {@link BeepFramingError} (`BEEP_ERR_MESSAGE_TOO_LARGE`) when the
 * header block exceeds `maxHeaderBytes`.
 */
export function parseEntityHeaders(head: Uint8Array, final: boolean, maxHeaderBytes = 16384): ParsedEntity | null {
  // The common case, an empty header block (what we send for default headers):
  // no text to look at, nothing to allocate (not even the closure below).
  if (head[0] === 0x0d && head[1] === 0x0a) return EMPTY_BLOCK_CRLF;
  if (head[0] === 0x0a) return EMPTY_BLOCK_LF;
  // Next most common: exactly the block channel 0 sends (what the parser below would make of it).
  if (startsWithBeepXml(head) && BEEP_XML_BLOCK.length <= maxHeaderBytes) {
    return { contentType: BEEP_XML_TYPE, transferEncoding: DEFAULT_TRANSFER_ENCODING, headers: { 'content-type': BEEP_XML_TYPE }, bodyOffset: BEEP_XML_BLOCK.length };
  }
  const buf = Buffer.isBuffer(head) ? head : Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const defaults = (): ParsedEntity => ({
    contentType: DEFAULT_CONTENT_TYPE,
    transferEncoding: DEFAULT_TRANSFER_ENCODING,
    headers: {},
    bodyOffset: 0,
  });
  if (buf.length === 0) return final ? defaults() : null;
  // Does it start like a header block at all?
  // The verdict looks at no more of the first line than a prefix too long for
  // a header block shows (maxHeaderBytes octets), so it is the same however
  // the message is split.
  const firstLf = buf.indexOf(0x0a);
  const cut = maxHeaderBytes;
  const whole = firstLf >= 0 && firstLf <= cut;
  const firstLine = buf.toString('latin1', 0, Math.min(firstLf < 0 ? buf.length : firstLf, cut)).replace(/\r$/, '');
  // Without its LF yet, a name (and the white space before its colon) may still become a header line.
  // A bare name still without its colon after maxHeaderBytes octets can never become one.
  const startsLikeHeaders = firstLine === '' || HEADER_LINE.test(firstLine) || (!whole && buf.length <= cut && /^[!#$%&'*+.^_`|~0-9A-Za-z-]*[ \t]*$/.test(firstLine));
  if (!startsLikeHeaders) return defaults();
  const end = headerEnd(buf);
  if (end < 0) {
    if (buf.length > maxHeaderBytes) {
      throw new BeepFramingError(ErrorCodes.MESSAGE_TOO_LARGE, `MIME header block longer than ${maxHeaderBytes} octets`);
    }
    return final ? defaults() : null;
  }
  if (end > maxHeaderBytes) {
    throw new BeepFramingError(ErrorCodes.MESSAGE_TOO_LARGE, `MIME header block longer than ${maxHeaderBytes} octets`);
  }
  const headers: Record<string, string> = {};
  const text = buf.toString('utf8', 0, end);
  let last: string | null = null;
  let fields = 0; // issue 17 (CVE-2019-9516): header fields counted
  for (const raw of text.split(/\r?\n/)) {
    if (raw === '') continue;
    if (++fields > MAX_ENTITY_HEADER_FIELDS) {
      throw new BeepFramingError(ErrorCodes.MESSAGE_TOO_LARGE, `more than ${MAX_ENTITY_HEADER_FIELDS} MIME header fields`);
    }
    if ((raw[0] === ' ' || raw[0] === '\t') && last !== null) {
      if (BAD_VALUE.test(raw.trim())) return defaults();
      headers[last] += ' ' + raw.trim();
      continue;
    }
    const m = HEADER_LINE.exec(raw);
    // Not a header block after all (a CR or NUL inside a value included): all body.
    if (!m || BAD_VALUE.test((m[2] as string).trim())) return defaults();
    last = (m[1] as string).toLowerCase();
    headers[last] = (m[2] as string).trim();
  }
  return {
    contentType: headers['content-type'] ?? DEFAULT_CONTENT_TYPE,
    transferEncoding: headers['content-transfer-encoding'] ?? DEFAULT_TRANSFER_ENCODING,
    headers,
    bodyOffset: end,
  };
}

/** The media type of a Content-Type value, lower-cased, without parameters. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}
