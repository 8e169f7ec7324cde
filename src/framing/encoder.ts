/**
 * Frame encoder: returns the buffers of a frame for one vectored write.
 * Payload buffers are passed through as given — never copied to be framed.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { MAX_INT31, MAX_UINT32, checkRange, type DataKeyword } from './header.js';

/** The frame trailer, `END` CRLF (RFC 3080 §2.2.1.3). Shared, never mutate. */
export const TRAILER: Uint8Array = Buffer.from('END\r\n', 'latin1');

/** Fields of a data frame to encode; `size` is derived from the payload. */
export interface EncodeDataFrame {
  type: DataKeyword;
  channel: number;
  msgno: number;
  more: boolean;
  seqno: number;
  ansno?: number;
}

/** Total octets of a list of buffers. */
export function byteLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  return n;
}

/**
 * Encode a data frame as `[header, ...payload, trailer]`. `payload` may be one
 * buffer or several (e.g. MIME entity headers followed by a slice of the body);
 * they are referenced, not copied.
 */
export function encodeDataFrame(frame: EncodeDataFrame, payload: Uint8Array | readonly Uint8Array[] = []): Uint8Array[] {
  const out: Uint8Array[] = [];
  pushDataFrame(out, frame, payload instanceof Uint8Array ? [payload] : payload);
  return out;
}

/**
 * Append a data frame to `out` as header, payload parts (by reference, empty
 * ones left out) and trailer; returns the frame's octets. The same frame as
 * {@link encodeDataFrame}, for callers collecting a batch for one write.
 */
export function pushDataFrame(out: Uint8Array[], frame: EncodeDataFrame, parts: readonly Uint8Array[]): number {
  const size = byteLength(parts);
  const header = encodeHeader(frame, size);
  out.push(header);
  for (const p of parts) if (p.byteLength > 0) out.push(p);
  out.push(TRAILER);
  return header.byteLength + size + TRAILER.byteLength;
}

/** Encode a SEQ frame (RFC 3081 §3.1.3). */
export function encodeSeqFrame(channel: number, ackno: number, window: number): Uint8Array {
  const b = Buffer.allocUnsafe(seqLength(channel, ackno, window));
  putSeq(b, 0, channel, ackno, window);
  return b;
}

/** Check a SEQ frame's fields (RangeError when one is out of range); returns its length. */
function seqLength(channel: number, ackno: number, window: number): number {
  checkRange('channel', channel, MAX_INT31);
  checkRange('ackno', ackno, MAX_UINT32);
  checkRange('window', window, MAX_INT31);
  return 4 + digits(channel) + 1 + digits(ackno) + 1 + digits(window) + 2;
}

/** Write a checked SEQ frame at `p`; returns the position after it. */
function putSeq(b: Buffer, p: number, channel: number, ackno: number, window: number): number {
  b[p] = 0x53; // S
  b[p + 1] = 0x45; // E
  b[p + 2] = 0x51; // Q
  b[p + 3] = 0x20;
  p = putUint(b, p + 4, channel, digits(channel));
  b[p++] = 0x20;
  p = putUint(b, p, ackno, digits(ackno));
  b[p++] = 0x20;
  p = putUint(b, p, window, digits(window));
  b[p] = 0x0d;
  b[p + 1] = 0x0a;
  return p + 2;
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function putUint(b: Buffer, pos: number, n: number, d: number): number {
  for (let i = pos + d - 1; i >= pos; i--) {
    b[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + d;
}

/** Check a data frame's fields (RangeError when one is out of range); returns its header line's length. */
function headerLength(type: DataKeyword, channel: number, msgno: number, more: boolean, seqno: number, size: number, ansno: number | undefined): number {
  checkRange('channel', channel, MAX_INT31);
  checkRange('msgno', msgno, MAX_INT31);
  checkRange('seqno', seqno, MAX_UINT32);
  checkRange('size', size, MAX_INT31);
  const ans = type === 'ANS';
  if (ans) {
    if (ansno === undefined) throw new RangeError('ANS frame needs an ansno');
    checkRange('ansno', ansno, MAX_INT31);
  } else if (type === 'NUL' && (more || size !== 0)) {
    throw new RangeError('NUL frame must be complete and empty');
  }
  return 4 + digits(channel) + 1 + digits(msgno) + 3 + digits(seqno) + 1 + digits(size) + (ans ? 1 + digits(ansno as number) : 0) + 2;
}

/** Write a checked header line with its CRLF at `p`; returns the position after it. */
function putHeader(b: Buffer, p: number, type: DataKeyword, channel: number, msgno: number, more: boolean, seqno: number, size: number, ansno: number | undefined): number {
  b[p] = type.charCodeAt(0);
  b[p + 1] = type.charCodeAt(1);
  b[p + 2] = type.charCodeAt(2);
  b[p + 3] = 0x20;
  p = putUint(b, p + 4, channel, digits(channel));
  b[p++] = 0x20;
  p = putUint(b, p, msgno, digits(msgno));
  b[p++] = 0x20;
  b[p++] = more ? 0x2a : 0x2e;
  b[p++] = 0x20;
  p = putUint(b, p, seqno, digits(seqno));
  b[p++] = 0x20;
  p = putUint(b, p, size, digits(size));
  if (type === 'ANS') {
    b[p++] = 0x20;
    p = putUint(b, p, ansno as number, digits(ansno as number));
  }
  b[p] = 0x0d;
  b[p + 1] = 0x0a;
  return p + 2;
}

/**
 * The header line of a data frame with its CRLF, written octet by octet
 * (the same text as {@link formatHeaderLine}, without building a string).
 */
function encodeHeader(f: EncodeDataFrame, size: number): Buffer {
  const b = Buffer.allocUnsafe(headerLength(f.type, f.channel, f.msgno, f.more, f.seqno, size, f.ansno));
  putHeader(b, 0, f.type, f.channel, f.msgno, f.more, f.seqno, size, f.ansno);
  return b;
}

/** Payload pieces shorter than this are copied into a batch's slab; longer ones are written as they are. */
export const COPY_BELOW = 4096;

/** Size of the slabs a {@link FrameBatch} writes into. */
const SLAB = 64 * 1024;

/**
 * @internal
 * The frames of one write, built in place: header lines, trailers, SEQ frames
 * and payload pieces shorter than {@link COPY_BELOW} are written into a slab
 * shared by successive batches (never overwritten: each batch takes a new
 * region of it), payloads of {@link COPY_BELOW} octets or more are referenced,
 * never copied. A round trip's frames thus become one buffer, one `write()`,
 * with nothing allocated per frame; a bulk frame becomes
 * `[header, payload, trailer + next header, …]`.
 */
export class FrameBatch {
  private slab: Buffer = Buffer.alloc(0);
  /** Start of the region of the slab this batch has not yet cut into a piece. */
  private start = 0;
  private pos = 0;
  private pieces: Uint8Array[] = [];

  /** Make room for `n` octets in the slab. */
  private room(n: number): void {
    if (this.slab.length - this.pos >= n) return;
    this.cut();
    this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB, n));
    this.start = 0;
    this.pos = 0;
  }

  private cut(): void {
    if (this.pos > this.start) {
      this.pieces.push(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }

  /** Append raw octets (copied when short, referenced when long). */
  raw(b: Uint8Array): void {
    const n = b.byteLength;
    if (n === 0) return;
    if (n >= COPY_BELOW) {
      this.cut();
      this.pieces.push(b);
      return;
    }
    this.room(n);
    this.slab.set(b, this.pos);
    this.pos += n;
  }

  /** Append a SEQ frame (RFC 3081 §3.1.3); returns its octets. */
  seq(channel: number, ackno: number, window: number): number {
    const n = seqLength(channel, ackno, window);
    this.room(n);
    this.pos = putSeq(this.slab, this.pos, channel, ackno, window);
    return n;
  }

  /**
   * Append a data frame: header, `size` octets of payload in the first
   * `count` of `parts`, trailer
   * (RFC 3080 §2.2.1); returns its octets. Fields are checked before anything
   * is written (RangeError).
   */
  data(type: DataKeyword, channel: number, msgno: number, more: boolean, seqno: number, ansno: number | undefined, parts: readonly Uint8Array[], size: number, count = parts.length): number {
    const h = headerLength(type, channel, msgno, more, seqno, size, ansno);
    this.room(h);
    this.pos = putHeader(this.slab, this.pos, type, channel, msgno, more, seqno, size, ansno);
    for (let i = 0; i < count; i++) this.raw(parts[i] as Uint8Array);
    this.room(5);
    this.slab.set(TRAILER, this.pos);
    this.pos += 5;
    return h + size + 5;
  }

  /** The batch's pieces, in order (null when empty); the batch starts afresh. */
  take(): Uint8Array[] | null {
    this.cut();
    const pieces = this.pieces;
    if (pieces.length === 0) return null;
    // One piece (a batch of short frames): a one-slot array, and the batch keeps
    // its own (popping keeps its room: no array grown per batch).
    if (pieces.length === 1) return [pieces.pop() as Uint8Array];
    this.pieces = [];
    return pieces;
  }
}
