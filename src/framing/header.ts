/**
 * Frame header grammar: RFC 3080 §2.2.1 (data frames) and RFC 3081 §3.1.3 (SEQ).
 *
 * Parsing is strict about syntax (single spaces, canonical decimal numbers,
 * ranges, CRLF) and rejects with a {@link BeepFramingError}; formatting emits
 * exactly the RFC's syntax.
 *
 * @module
 */
import { BeepFramingError, ErrorCodes } from '../errors.js';

/** The five data-frame keywords of RFC 3080 §2.2.1. */
export type DataKeyword = 'MSG' | 'RPY' | 'ERR' | 'ANS' | 'NUL';

/** Largest channel number, message number, size and answer number sent (2^31 − 1). */
export const MAX_INT31 = 2147483647;
/** Largest sequence number (2^32 − 1). */
export const MAX_UINT32 = 4294967295;

/** The header of a data frame (RFC 3080 §2.2.1). */
export interface DataFrameHeader {
  readonly type: DataKeyword;
  /** Channel number, 0..2147483647. */
  readonly channel: number;
  /** Message number, 0..2147483647. */
  readonly msgno: number;
  /** Continuation indicator: `true` for intermediate (`*`), `false` for complete (`.`). */
  readonly more: boolean;
  /** Sequence number of the first payload octet, 0..4294967295. */
  readonly seqno: number;
  /** Exact number of payload octets, 0..2147483647. */
  readonly size: number;
  /** Answer number; present on (and only on) `ANS` frames. */
  readonly ansno?: number;
}

/** A complete data frame: header plus payload. */
export interface DataFrame extends DataFrameHeader {
  /**
   * The payload. A view (`subarray`) into the decoder's input where the payload
   * lay in one input chunk; otherwise a single buffer the parts were copied into.
   */
  readonly payload: Uint8Array;
}

/** A SEQ frame (RFC 3081 §3.1.3). */
export interface SeqFrame {
  readonly type: 'SEQ';
  readonly channel: number;
  /** The next sequence number the sender of the SEQ expects to receive. */
  readonly ackno: number;
  /** Octets, beginning at `ackno`, the sender of the SEQ is prepared to receive. */
  readonly window: number;
}

/** Any frame on the wire. */
export type Frame = DataFrame | SeqFrame;

/** Any frame header, as known before the payload is read. */
export type FrameHeader = DataFrameHeader | SeqFrame;

const DIGITS = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * Parse a canonical unsigned decimal: digits only, no sign, no leading zero,
 * no more than `max`. Returns -1 when the token is not such a number.
 */
export function parseCanonicalUint(token: string, max: number): number {
  if (!DIGITS.test(token)) return -1;
  const n = Number(token);
  return n <= max ? n : -1;
}

function syntax(message: string, offset?: number): BeepFramingError {
  return new BeepFramingError(ErrorCodes.FRAME_SYNTAX, message, offset);
}

function field(tokens: string[], i: number, name: string, max: number, line: string): number {
  const tok = tokens[i];
  const n = tok === undefined ? -1 : parseCanonicalUint(tok, max);
  if (n < 0) {
    throw syntax(`invalid ${name} ${JSON.stringify(tok ?? '')} in header ${JSON.stringify(line)}`);
  }
  return n;
}

/** Size of an empty MIME header block (CRLF): what the Vortex Library puts in its NUL frames. */
export const EMPTY_HEADER_BLOCK_SIZE = 2;

/** Options of {@link parseHeaderLine}: opt-in tolerances, all off by default. */
export interface HeaderParseOptions {
  /**
   * Accept a complete NUL frame of exactly {@link EMPTY_HEADER_BLOCK_SIZE} octets (an empty
   * MIME header block, as the Vortex Library sends), which RFC 3080 §2.2.1.1 calls poorly
   * formed. The decoder then checks that those octets are CRLF.
   */
  acceptNulHeaderBlock?: boolean;
}

/**
 * Parse one header line, without its terminating CRLF.
 *
 * RFC 3080 §2.2.1.1: "if the header doesn't start with "MSG", "RPY", "ERR",
 * "ANS", or "NUL"" or "if any of the parameters in the header cannot be
 * determined or are invalid" the frame is poorly formed; RFC 3081 §3.1.3 says
 * the same of SEQ. Both raise {@link BeepFramingError} with code
 * `BEEP_ERR_FRAME_SYNTAX`.
 *
 * The `ansno` range is accepted up to 2^32 − 1, as the text of §2.2.1.1 says
 * (the ABNF says 2^31 − 1; we send only the latter).
 */
export function parseHeaderLine(line: string, options: HeaderParseOptions = {}): FrameHeader {
  const tokens = line.split(' ');
  const keyword = tokens[0];
  switch (keyword) {
    case 'MSG':
    case 'RPY':
    case 'ERR':
    case 'ANS':
    case 'NUL': {
      const expected = keyword === 'ANS' ? 7 : 6;
      if (tokens.length !== expected) {
        throw syntax(`${keyword} header needs ${expected - 1} parameters: ${JSON.stringify(line)}`);
      }
      const channel = field(tokens, 1, 'channel', MAX_INT31, line);
      const msgno = field(tokens, 2, 'msgno', MAX_INT31, line);
      const moreTok = tokens[3];
      if (moreTok !== '.' && moreTok !== '*') {
        throw syntax(`invalid continuation indicator ${JSON.stringify(moreTok)} in ${JSON.stringify(line)}`);
      }
      const seqno = field(tokens, 4, 'seqno', MAX_UINT32, line);
      const size = field(tokens, 5, 'size', MAX_INT31, line);
      const more = moreTok === '*';
      if (keyword === 'ANS') {
        const ansno = field(tokens, 6, 'ansno', MAX_UINT32, line);
        return { type: keyword, channel, msgno, more, seqno, size, ansno };
      }
      // RFC 3080 §2.2.1.1: "if the header starts with "NUL", and the continuation
      // indicator is intermediate ("*") or the payload size is non-zero".
      if (keyword === 'NUL' && (more || (size !== 0 && !(options.acceptNulHeaderBlock === true && size === EMPTY_HEADER_BLOCK_SIZE)))) {
        throw syntax(`NUL frame must be complete and empty: ${JSON.stringify(line)}`);
      }
      return { type: keyword, channel, msgno, more, seqno, size };
    }
    case 'SEQ': {
      if (tokens.length !== 4) throw syntax(`SEQ header needs 3 parameters: ${JSON.stringify(line)}`);
      const channel = field(tokens, 1, 'channel', MAX_INT31, line);
      const ackno = field(tokens, 2, 'ackno', MAX_UINT32, line);
      const window = field(tokens, 3, 'window', MAX_INT31, line);
      return { type: 'SEQ', channel, ackno, window };
    }
    default:
      throw syntax(`unknown frame keyword ${JSON.stringify((keyword ?? '').slice(0, 16))}`);
  }
}

/** @internal A field out of range when encoding: a bug in the caller, never peer input (`RangeError`). */
export function checkRange(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${name} ${v} out of range 0..${max}`);
  }
}

/**
 * Format a header line with its CRLF, exactly as RFC 3080 §2.2.1 / RFC 3081
 * §3.1.3 write it. Throws `RangeError` for out-of-range fields: a bug in the
 * caller, never peer input.
 */
export function formatHeaderLine(h: FrameHeader): string {
  if (h.type === 'SEQ') {
    checkRange('channel', h.channel, MAX_INT31);
    checkRange('ackno', h.ackno, MAX_UINT32);
    checkRange('window', h.window, MAX_INT31);
    return `SEQ ${h.channel} ${h.ackno} ${h.window}\r\n`;
  }
  checkRange('channel', h.channel, MAX_INT31);
  checkRange('msgno', h.msgno, MAX_INT31);
  checkRange('seqno', h.seqno, MAX_UINT32);
  checkRange('size', h.size, MAX_INT31);
  const more = h.more ? '*' : '.';
  if (h.type === 'ANS') {
    if (h.ansno === undefined) throw new RangeError('ANS frame needs an ansno');
    checkRange('ansno', h.ansno, MAX_INT31);
    return `ANS ${h.channel} ${h.msgno} ${more} ${h.seqno} ${h.size} ${h.ansno}\r\n`;
  }
  if (h.type === 'NUL' && (h.more || h.size !== 0)) {
    throw new RangeError('NUL frame must be complete and empty');
  }
  return `${h.type} ${h.channel} ${h.msgno} ${more} ${h.seqno} ${h.size}\r\n`;
}

/**
 * Read a canonical unsigned decimal at `buf[pos]`, up to the next space or
 * `end`: sets {@link num} and returns the position after it, or -1 when the
 * octets are not such a number of at most `max`.
 */
function uintAt(buf: Uint8Array, pos: number, end: number, max: number): number {
  const first = buf[pos];
  if (first === undefined || first < 0x30 || first > 0x39 || pos >= end) return -1;
  let n = first - 0x30;
  let i = pos + 1;
  if (n === 0) {
    num = 0;
    return i === end || buf[i] === 0x20 ? i : -1;
  }
  for (; i < end; i++) {
    const c = buf[i] as number;
    if (c === 0x20) break;
    if (c < 0x30 || c > 0x39 || i - pos >= 10) return -1;
    n = n * 10 + (c - 0x30);
  }
  if (n > max) return -1;
  num = n;
  return i;
}
let num = 0;

const KW_MSG = 0x4d5347;
const KW_RPY = 0x525059;
const KW_ERR = 0x455252;
const KW_ANS = 0x414e53;
const KW_NUL = 0x4e554c;
const KW_SEQ = 0x534551;

/**
 * The fast path of {@link parseHeaderLine}: parse the header line in
 * `buf[start, end)` (without its CRLF) straight from its octets. Returns
 * `null` for anything but a well-formed data or SEQ header (the caller then
 * runs {@link parseHeaderLine} on the text, which accepts the same headers and
 * names what is wrong with the others), so both give the same verdict.
 */
export function parseHeaderBytes(buf: Uint8Array, start: number, end: number): FrameHeader | null {
  if (end - start < 9 || buf[start + 3] !== 0x20) return null;
  const kw = ((buf[start] as number) << 16) | ((buf[start + 1] as number) << 8) | (buf[start + 2] as number);
  let p = start + 4;
  if (kw === KW_SEQ) {
    if ((p = uintAt(buf, p, end, MAX_INT31)) < 0 || buf[p] !== 0x20) return null;
    const channel = num;
    if ((p = uintAt(buf, p + 1, end, MAX_UINT32)) < 0 || buf[p] !== 0x20) return null;
    const ackno = num;
    if ((p = uintAt(buf, p + 1, end, MAX_INT31)) !== end) return null;
    return { type: 'SEQ', channel, ackno, window: num };
  }
  let type: DataKeyword;
  if (kw === KW_MSG) type = 'MSG';
  else if (kw === KW_RPY) type = 'RPY';
  else if (kw === KW_ANS) type = 'ANS';
  else if (kw === KW_ERR) type = 'ERR';
  else if (kw === KW_NUL) type = 'NUL';
  else return null;
  if ((p = uintAt(buf, p, end, MAX_INT31)) < 0 || buf[p] !== 0x20) return null;
  const channel = num;
  if ((p = uintAt(buf, p + 1, end, MAX_INT31)) < 0 || buf[p] !== 0x20) return null;
  const msgno = num;
  const m = buf[p + 1];
  if ((m !== 0x2e && m !== 0x2a) || buf[p + 2] !== 0x20) return null;
  const more = m === 0x2a;
  if ((p = uintAt(buf, p + 3, end, MAX_UINT32)) < 0 || buf[p] !== 0x20) return null;
  const seqno = num;
  p = uintAt(buf, p + 1, end, MAX_INT31);
  const size = num;
  if (type === 'ANS') {
    if (p < 0 || buf[p] !== 0x20 || (p = uintAt(buf, p + 1, end, MAX_UINT32)) !== end) return null;
    return { type, channel, msgno, more, seqno, size, ansno: num };
  }
  if (p !== end || (type === 'NUL' && (more || size !== 0))) return null;
  return { type, channel, msgno, more, seqno, size };
}
