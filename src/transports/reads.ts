/**
 * Reads into memory the caller supplies and reuses (net's `onread`), for a
 * socket that already exists — accepted by a server, or a TLS socket — which
 * `onread` as a constructor option cannot reach (issue 13).
 *
 * Node keeps `onread` state on the socket under three symbols and switches
 * the handle with `useUserBuffer()`; both have been in `net` since Node 12.
 * Where any piece is missing the function changes nothing and returns false,
 * and the caller reads with `'data'` events as before; a test in
 * `test/transports` fails if a Node release takes them away.
 *
 * @module
 */
import type { Duplex } from 'node:stream';

/** What a recycled read calls: the next buffer to read into, and the callback for each read. */
export interface RecycledReads {
  /** The buffer the next read goes into (called after each read). */
  buffer(): Buffer;
  /** `n` octets were read into `buf` (from its start). Return false to stop reading until `resume()`. */
  callback(n: number, buf: Buffer): boolean | void;
}

function symbolOf(o: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(o).find((s) => s.description === description);
}

/**
 * Make `socket` read into `reads.buffer()` and hand each read to
 * `reads.callback` instead of emitting `'data'`. Only before any data was
 * read into the socket's own buffer. Returns false (and changes nothing)
 * when the socket is not a net/TLS socket of this Node, or already has data
 * buffered.
 */
export function readInto(socket: Duplex, reads: RecycledReads): boolean {
  const s = socket as unknown as Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Buffer) => void } | null; readableLength: number };
  const handle = s._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || s.readableLength !== 0) return false;
  const kBuffer = symbolOf(s, 'kBuffer');
  const kBufferCb = symbolOf(s, 'kBufferCb');
  const kBufferGen = symbolOf(s, 'kBufferGen');
  if (!kBuffer || !kBufferCb || !kBufferGen || s[kBuffer] !== null) return false;
  const first = reads.buffer();
  s[kBufferGen] = reads.buffer;
  s[kBuffer] = first;
  s[kBufferCb] = reads.callback;
  handle.useUserBuffer(first);
  return true;
}
