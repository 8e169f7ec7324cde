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
  checkRange('channel', channel, MAX_INT31);
  checkRange('ackno', ackno, MAX_UINT32);
  checkRange('window', window, MAX_INT31);
  const dc = digits(channel);
  const da = digits(ackno);
  const dw = digits(window);
  const b = Buffer.allocUnsafe(4 + dc + 1 + da + 1 + dw + 2);
  b[0] = 0x53; // S
  b[1] = 0x45; // E
  b[2] = 0x51; // Q
  b[3] = 0x20;
  let p = putUint(b, 4, channel, dc);
  b[p++] = 0x20;
  p = putUint(b, p, ackno, da);
  b[p++] = 0x20;
  p = putUint(b, p, window, dw);
  b[p] = 0x0d;
  b[p + 1] = 0x0a;
  return b;
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

/**
 * The header line of a data frame with its CRLF, written octet by octet
 * (the same text as {@link formatHeaderLine}, without building a string).
 */
function encodeHeader(f: EncodeDataFrame, size: number): Buffer {
  checkRange('channel', f.channel, MAX_INT31);
  checkRange('msgno', f.msgno, MAX_INT31);
  checkRange('seqno', f.seqno, MAX_UINT32);
  checkRange('size', size, MAX_INT31);
  const ans = f.type === 'ANS';
  if (ans) {
    if (f.ansno === undefined) throw new RangeError('ANS frame needs an ansno');
    checkRange('ansno', f.ansno, MAX_INT31);
  } else if (f.type === 'NUL' && (f.more || size !== 0)) {
    throw new RangeError('NUL frame must be complete and empty');
  }
  const dc = digits(f.channel);
  const dm = digits(f.msgno);
  const ds = digits(f.seqno);
  const dz = digits(size);
  const da = ans ? digits(f.ansno as number) : 0;
  const b = Buffer.allocUnsafe(4 + dc + 1 + dm + 3 + ds + 1 + dz + (ans ? 1 + da : 0) + 2);
  const t = f.type;
  b[0] = t.charCodeAt(0);
  b[1] = t.charCodeAt(1);
  b[2] = t.charCodeAt(2);
  b[3] = 0x20;
  let p = putUint(b, 4, f.channel, dc);
  b[p++] = 0x20;
  p = putUint(b, p, f.msgno, dm);
  b[p++] = 0x20;
  b[p++] = f.more ? 0x2a : 0x2e;
  b[p++] = 0x20;
  p = putUint(b, p, f.seqno, ds);
  b[p++] = 0x20;
  p = putUint(b, p, size, dz);
  if (ans) {
    b[p++] = 0x20;
    p = putUint(b, p, f.ansno as number, da);
  }
  b[p] = 0x0d;
  b[p + 1] = 0x0a;
  return b;
}
