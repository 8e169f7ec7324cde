/**
 * Frame encoder: returns the buffers of a frame for one vectored write.
 * Payload buffers are passed through as given — never copied to be framed.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { formatHeaderLine, type DataKeyword } from './header.js';

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
  const parts = payload instanceof Uint8Array ? [payload] : payload;
  const size = byteLength(parts);
  const header = Buffer.from(
    formatHeaderLine(frame.ansno === undefined ? { ...frame, size } : { ...frame, size, ansno: frame.ansno }),
    'latin1',
  );
  const out: Uint8Array[] = [header];
  for (const p of parts) if (p.byteLength > 0) out.push(p);
  out.push(TRAILER);
  return out;
}

/** Encode a SEQ frame (RFC 3081 §3.1.3). */
export function encodeSeqFrame(channel: number, ackno: number, window: number): Uint8Array {
  return Buffer.from(formatHeaderLine({ type: 'SEQ', channel, ackno, window }), 'latin1');
}
