/**
 * Incremental frame decoder (RFC 3080 §2.2.1, RFC 3081 §3.1.3).
 *
 * Feed it any split of the inbound byte stream — one octet at a time or many
 * frames per chunk. Frames come out through a callback, in order; the header is
 * offered to an optional validator before any payload is read, so that an
 * oversized or out-of-window frame is refused at header time.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepFramingError, ErrorCodes } from '../errors.js';
import { EMPTY_HEADER_BLOCK_SIZE, parseHeaderBytes, parseHeaderLine, type DataFrameHeader, type Frame, type FrameHeader, type HeaderParseOptions } from './header.js';

/** Limits enforced by the decoder. */
export interface DecoderLimits {
  /**
   * Longest header line accepted, in octets, excluding CRLF. The longest legal
   * header is 60 octets; default 128.
   */
  maxHeaderLine?: number;
  /** Largest payload accepted in one frame, in octets. Default 8 MiB. */
  maxFrameSize?: number;
}

/** Options of a {@link FrameDecoder}. */
export interface DecoderOptions extends DecoderLimits {
  /**
   * Called with each header as soon as it is parsed, before its payload is
   * read. Throw a {@link BeepFramingError} to reject the frame (the decoder is
   * then failed and the error propagates out of {@link FrameDecoder.push}).
   */
  onHeader?: (header: FrameHeader) => void;
  /**
   * Streaming mode: payload octets are handed over as they arrive, as views of
   * the input chunks (never copied), and the frame passed to `onFrame` then
   * carries an empty `payload` (its `size` is still the real size). Without
   * it, a payload split over chunks is copied into one buffer.
   */
  onPayload?: (part: Uint8Array) => void;
  /**
   * Interoperability, off by default: accept a NUL frame whose payload is exactly an empty
   * MIME header block (CRLF), as the Vortex Library sends, instead of ending the session as
   * RFC 3080 §2.2.1.1 requires. Such a NUL is delivered as an empty NUL (its `size` stays 2,
   * for the seqno and window accounting that `onHeader` did); its two octets are never given
   * to `onPayload`, and {@link onNulHeaderBlock} is called after the frame so the receiver can
   * release them from its window. Any other payload still ends the session.
   */
  acceptNulHeaderBlock?: boolean;
  /** Called after a NUL with an empty header block was delivered (see {@link acceptNulHeaderBlock}). */
  onNulHeaderBlock?: (header: DataFrameHeader) => void;
  /**
   * Streaming mode only (with {@link onPayload}): every data frame is passed
   * to `onFrame` in one object, reused — valid only during that call (keep
   * its fields, not the object). An ANS's `ansno` is set; other frames' is
   * `undefined`. Saves an object per frame.
   */
  reuseFrame?: boolean;
}

/** Default limits. */
export const DEFAULT_DECODER_LIMITS: Required<DecoderLimits> = Object.freeze({
  maxHeaderLine: 128,
  maxFrameSize: 8 * 1024 * 1024,
});

const TRAILER = Buffer.from('END\r\n', 'latin1');
const EMPTY_HEADER_BLOCK = Buffer.from('\r\n', 'latin1');
const KEYWORDS = new Set(['MSG', 'RPY', 'ERR', 'ANS', 'NUL', 'SEQ']);
const LF = 0x0a;
const CR = 0x0d;

const enum State {
  Header,
  Payload,
  Trailer,
  Failed,
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Incremental decoder. Not reusable after an error: every later `push` rethrows
 * the first error, since RFC 3080 §2.2.1.1 ends the session on any poorly
 * formed frame.
 */
export class FrameDecoder {
  private readonly maxHeaderLine: number;
  private readonly maxFrameSize: number;
  private readonly onHeader: ((h: FrameHeader) => void) | undefined;
  private readonly onPayload: ((part: Uint8Array) => void) | undefined;
  private readonly headerOptions: HeaderParseOptions;
  private readonly onNulHeaderBlock: ((h: DataFrameHeader) => void) | undefined;
  /** The one frame object passed for every data frame ({@link DecoderOptions.reuseFrame}), else null. */
  private readonly shared: { type: DataFrameHeader['type']; channel: number; msgno: number; more: boolean; seqno: number; size: number; ansno: number | undefined; payload: Uint8Array } | null;
  /** The current frame is a NUL carrying an empty header block (its payload is checked, not kept). */
  private nulBlock = false;
  private state = State.Header;
  /** Partial header line carried over from earlier chunks. */
  private headerPending: Buffer | null = null;
  private current: DataFrameHeader | null = null;
  /** Destination for a payload split over chunks (one copy). */
  private payloadBuf: Buffer | null = null;
  /** The current payload as a view of one input chunk, when it lay in one. */
  private pendingView: Buffer | null = null;
  /** Set when the current frame has no payload. */
  private pendingEmpty = false;
  private payloadGot = 0;
  private trailerGot = 0;
  private failure: BeepFramingError | null = null;
  private consumed = 0;

  constructor(options: DecoderOptions = {}) {
    this.maxHeaderLine = options.maxHeaderLine ?? DEFAULT_DECODER_LIMITS.maxHeaderLine;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_DECODER_LIMITS.maxFrameSize;
    this.onHeader = options.onHeader;
    this.onPayload = options.onPayload;
    this.shared = options.reuseFrame === true && options.onPayload ? { type: 'MSG', channel: 0, msgno: 0, more: false, seqno: 0, size: 0, ansno: undefined, payload: EMPTY } : null;
    this.headerOptions = options.acceptNulHeaderBlock === true ? { acceptNulHeaderBlock: true } : {};
    this.onNulHeaderBlock = options.onNulHeaderBlock;
  }

  /** Octets consumed so far (for diagnostics). */
  get offset(): number {
    return this.consumed;
  }

  /** True when no partial frame is buffered (a clean frame boundary). */
  get idle(): boolean {
    return this.state === State.Header && this.headerPending === null;
  }

  /**
   * Decode `input`, calling `onFrame` for each complete frame in order.
   * Throws {@link BeepFramingError} on the first poorly-formed frame; frames
   * before it in the same chunk have already been delivered.
   */
  push(input: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failure) throw this.failure;
    const chunk = asBuffer(input);
    let pos = 0;
    try {
      while (pos < chunk.length) {
        switch (this.state) {
          case State.Header:
            pos = this.readHeader(chunk, pos, onFrame);
            break;
          case State.Payload:
            pos = this.readPayload(chunk, pos);
            break;
          case State.Trailer:
            pos = this.readTrailer(chunk, pos, onFrame);
            break;
          default:
            throw this.failure ?? new BeepFramingError(ErrorCodes.FRAME_SYNTAX, 'decoder failed');
        }
      }
    } catch (err) {
      this.state = State.Failed;
      this.failure =
        err instanceof BeepFramingError
          ? err
          : new BeepFramingError(ErrorCodes.PROTOCOL, `frame rejected: ${(err as Error)?.message ?? String(err)}`, this.consumed + pos, { cause: err });
      this.headerPending = null;
      this.payloadBuf = null;
      throw this.failure;
    }
    this.consumed += chunk.length;
  }

  private fail(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], message: string, at: number): never {
    throw new BeepFramingError(code, message, this.consumed + at);
  }

  private readHeader(chunk: Buffer, pos: number, onFrame: (f: Frame) => void): number {
    const lf = chunk.indexOf(LF, pos);
    const pendingLen = this.headerPending?.length ?? 0;
    if (lf < 0) {
      const have = pendingLen + chunk.length - pos;
      // +1: the CR of the CRLF may already be here.
      if (have > this.maxHeaderLine + 1) {
        this.fail(ErrorCodes.HEADER_TOO_LONG, `header line longer than ${this.maxHeaderLine} octets`, pos);
      }
      const part = chunk.subarray(pos);
      this.headerPending = this.headerPending ? Buffer.concat([this.headerPending, part]) : Buffer.from(part);
      this.checkKeywordPrefix(this.headerPending, pos);
      return chunk.length;
    }
    // The line is `line[start, lf]` (its LF at `lf`); parsed where it lies, unless it began in an earlier chunk.
    let line = chunk;
    let start = pos;
    let end = lf + 1;
    if (this.headerPending) {
      line = Buffer.concat([this.headerPending, chunk.subarray(pos, lf + 1)]);
      this.headerPending = null;
      start = 0;
      end = line.length;
    }
    const contentLen = end - start - 2;
    if (contentLen > this.maxHeaderLine) {
      this.fail(ErrorCodes.HEADER_TOO_LONG, `header line longer than ${this.maxHeaderLine} octets`, pos);
    }
    if (contentLen < 0 || line[end - 2] !== CR) {
      this.fail(ErrorCodes.FRAME_SYNTAX, 'header line not terminated by CRLF', lf);
    }
    const header = parseHeaderBytes(line, start, end - 2) ?? parseHeaderLine(line.toString('latin1', start, end - 2), this.headerOptions);
    const next = lf + 1;
    if (header.type === 'SEQ') {
      this.onHeader?.(header);
      onFrame(header);
      return next;
    }
    if (header.size > this.maxFrameSize) {
      this.fail(ErrorCodes.FRAME_TOO_LARGE, `frame payload of ${header.size} octets exceeds limit of ${this.maxFrameSize}`, pos);
    }
    this.onHeader?.(header);
    this.current = header;
    this.payloadGot = 0;
    this.trailerGot = 0;
    this.state = header.size === 0 ? State.Trailer : State.Payload;
    if (header.size === 0) this.pendingEmpty = true;
    // Only with acceptNulHeaderBlock does a NUL get here with a payload (of exactly 2 octets).
    this.nulBlock = header.type === 'NUL' && header.size === EMPTY_HEADER_BLOCK_SIZE;
    return next;
  }

  private checkKeywordPrefix(pending: Buffer, at: number): void {
    if (pending.length >= 3 && !KEYWORDS.has(pending.toString('latin1', 0, 3))) {
      this.fail(ErrorCodes.FRAME_SYNTAX, `unknown frame keyword ${JSON.stringify(pending.toString('latin1', 0, 3))}`, at);
    }
  }

  private readPayload(chunk: Buffer, pos: number): number {
    const h = this.current as DataFrameHeader;
    const need = h.size - this.payloadGot;
    const avail = chunk.length - pos;
    if (this.nulBlock) {
      // The octets must be an empty header block; they go nowhere.
      while (this.payloadGot < h.size && pos < chunk.length) {
        if (chunk[pos] !== EMPTY_HEADER_BLOCK[this.payloadGot]) {
          this.fail(ErrorCodes.FRAME_SYNTAX, 'NUL frame payload is not an empty MIME header block (CRLF)', pos);
        }
        this.payloadGot++;
        pos++;
      }
      if (this.payloadGot === h.size) this.state = State.Trailer;
      return pos;
    }
    if (this.onPayload) {
      // Streaming: a view of whatever part of the payload this chunk holds.
      const n = Math.min(need, avail);
      this.payloadGot += n;
      if (this.payloadGot === h.size) this.state = State.Trailer;
      this.onPayload(chunk.subarray(pos, pos + n));
      return pos + n;
    }
    if (this.payloadBuf === null && avail >= need) {
      // Whole payload in this chunk: hand out a view, no copy.
      this.pendingView = chunk.subarray(pos, pos + need);
      this.payloadGot = h.size;
      this.state = State.Trailer;
      return pos + need;
    }
    if (this.payloadBuf === null) this.payloadBuf = Buffer.allocUnsafe(h.size);
    const n = Math.min(need, avail);
    chunk.copy(this.payloadBuf, this.payloadGot, pos, pos + n);
    this.payloadGot += n;
    if (this.payloadGot === h.size) this.state = State.Trailer;
    return pos + n;
  }

  private readTrailer(chunk: Buffer, pos: number, onFrame: (f: Frame) => void): number {
    // RFC 3080 §2.2.1.3: "if the characters immediately following the payload
    // don't correspond to a trailer, then the session is terminated".
    while (this.trailerGot < TRAILER.length && pos < chunk.length) {
      if (chunk[pos] !== TRAILER[this.trailerGot]) {
        this.fail(ErrorCodes.FRAME_SYNTAX, 'frame payload not followed by trailer "END\\r\\n"', pos);
      }
      this.trailerGot++;
      pos++;
    }
    if (this.trailerGot === TRAILER.length) this.emit(onFrame);
    return pos;
  }

  private emit(onFrame: (f: Frame) => void): void {
    const h = this.current as DataFrameHeader;
    let payload: Uint8Array;
    const nulBlock = this.nulBlock;
    this.nulBlock = false;
    if (this.pendingEmpty || this.onPayload || nulBlock) payload = EMPTY;
    else if (this.pendingView) payload = this.pendingView;
    else payload = this.payloadBuf as Buffer;
    this.current = null;
    this.payloadBuf = null;
    this.pendingView = null;
    this.pendingEmpty = false;
    this.state = State.Header;
    const shared = this.shared;
    if (shared !== null) {
      shared.type = h.type;
      shared.channel = h.channel;
      shared.msgno = h.msgno;
      shared.more = h.more;
      shared.seqno = h.seqno;
      shared.size = h.size;
      shared.ansno = h.type === 'ANS' ? h.ansno : undefined;
      onFrame(shared as DataFrame);
      if (nulBlock) this.onNulHeaderBlock?.(h);
      return;
    }
    const frame: DataFrame = h.type === 'ANS'
      ? { type: h.type, channel: h.channel, msgno: h.msgno, more: h.more, seqno: h.seqno, size: h.size, ansno: h.ansno as number, payload }
      : { type: h.type, channel: h.channel, msgno: h.msgno, more: h.more, seqno: h.seqno, size: h.size, payload };
    onFrame(frame);
    if (nulBlock) this.onNulHeaderBlock?.(h);
  }
}

type DataFrame = Extract<Frame, { payload: Uint8Array }>;
const EMPTY = Buffer.alloc(0);
