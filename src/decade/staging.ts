/**
 * Staging received octets for a writer without allocating per read.
 *
 * A message read with `IncomingMessage.views()` hands out views into the
 * session's receive memory, each valid only until the next step of the
 * iteration. Writing each view and waiting for the disk before the next one
 * would serialise the transfer on one file write per socket read (≈ 16 KiB
 * with TLS); keeping the views would keep the receive memory from being
 * reused. So each view is copied once into a staging buffer of
 * {@link STAGE_OCTETS}, and full buffers are hashed in one call and handed to
 * the writer, which writes them in the background. A buffer is reused once
 * the writer's `written` has passed its last octet (the writer has finished
 * with it: {@link BlobWriter.write}); a buffer whose octets were lent to
 * readers of the upload (a GET served while the PUT streams) is left to the
 * garbage collector instead.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { BlobWriter } from './store.js';

/** Octets of one staging buffer: one hash call and one queued write each. */
export const STAGE_OCTETS = 1024 * 1024;
/** Free staging buffers kept for reuse. */
const MAX_FREE = 8;

/** Copies transient views into recycled buffers and hands them to a {@link BlobWriter}; see the module documentation. */
export class Stager {
  private buf: Buffer | null = null;
  private pos = 0;
  /** Offset in the object of the current buffer's first octet. */
  private base = 0;
  /** Octets of the current buffer were lent out (to readers): never reuse it. */
  private lent = false;
  /** Buffers handed to the writer, with the offset just past their last octet. */
  private readonly handed: { buf: Buffer; end: number }[] = [];
  private readonly free: Buffer[] = [];
  /** Staging buffers allocated (for tests). */
  allocated = 0;

  /**
   * @param writer where full buffers go.
   * @param onStaged called with each copied piece before the next view is
   *   taken; returns true if it keeps the piece (then the buffer is never reused).
   * @param onFull called with each buffer's octets before the writer gets them (the hash).
   */
  constructor(
    private readonly writer: Pick<BlobWriter, 'written' | 'write'>,
    private readonly onStaged: (piece: Buffer) => boolean,
    private readonly onFull: (octets: Buffer) => void,
  ) {}

  /** Copy `view` in (it may be reused as soon as this resolves). */
  async add(view: Uint8Array): Promise<void> {
    let off = 0;
    while (off < view.byteLength) {
      const buf = (this.buf ??= this.take());
      const n = Math.min(view.byteLength - off, buf.length - this.pos);
      buf.set(off === 0 && n === view.byteLength ? view : view.subarray(off, off + n), this.pos);
      if (this.onStaged(buf.subarray(this.pos, this.pos + n))) this.lent = true;
      this.pos += n;
      off += n;
      if (this.pos === buf.length) await this.flush();
    }
  }

  /**
   * Hand on what is staged (at the end of the octets, or early: a reader
   * joined). The buffer is taken at once; writes go to the writer one after
   * another (never two waiting in it at the same time), and the promise
   * settles when this one was accepted.
   */
  flush(): Promise<void> {
    const buf = this.buf;
    if (buf === null || this.pos === 0) return this.tail;
    const octets = buf.subarray(0, this.pos);
    this.base += this.pos;
    if (!this.lent) this.handed.push({ buf, end: this.base });
    this.buf = null;
    this.pos = 0;
    this.lent = false;
    this.onFull(octets);
    this.tail = this.tail.then(() => this.writer.write(octets));
    return this.tail;
  }

  /** The last write handed to the writer. */
  private tail: Promise<void> = Promise.resolve();

  /** A buffer to fill: one the writer has finished with, or a new one. */
  private take(): Buffer {
    const written = this.writer.written;
    while (this.handed.length > 0 && (this.handed[0] as { end: number }).end <= written) {
      const { buf } = this.handed.shift() as { buf: Buffer };
      if (this.free.length < MAX_FREE) this.free.push(buf);
    }
    const b = this.free.pop();
    if (b !== undefined) return b;
    this.allocated++;
    return Buffer.allocUnsafeSlow(STAGE_OCTETS);
  }
}
