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

function checkRange(name: string, v: number, max: number): void {
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
