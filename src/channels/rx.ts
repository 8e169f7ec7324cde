/**
 * @internal
 * Receive memory that socket reads are made into and reused (issue 13).
 *
 * Every socket read used to be a fresh 64 KiB `ArrayBuffer`: V8 counts each
 * as external memory, and once a first full GC has sized the old generation
 * from a library's small heap, that count alone triggers a full (Mark-Compact)
 * GC every 20–30 MB read, while malloc hands the pages back to the kernel and
 * faults them in again. Reads made into recycled blocks allocate nothing.
 *
 * A block is reused only when no view into it is still held: every payload
 * view a message keeps holds a reference, released when the application is
 * done with it ({@link IncomingMessage.views}) or when the message is thrown
 * away. A view handed to the application for good (a `Readable` chunk, the
 * buffer `bytes()` returns) is copied when short; when long, its block is
 * given away and never reused — which costs what a fresh read buffer cost.
 *
 * @module
 */
import { Buffer } from 'node:buffer';

/** Size of a block. */
const BLOCK = 256 * 1024;
/** A read is offered at least this much room (else the next block is taken). */
const MIN_READ = 64 * 1024;
/** Free blocks kept for reuse; more go back to the garbage collector. */
const MAX_FREE = 16;
/** Views shorter than this are copied when handed out for good (pooled by Node below 4 KiB). */
export const OWN_COPY_BELOW = 4096;

/** Octets copied by a loop rather than `Buffer#copy` (which makes a view to copy from an offset). */
const SHORT_COPY = 512;

/** A block of receive memory. */
export class RxBlock {
  readonly buf: Buffer;
  /** Views into it that are still held. */
  refs = 0;
  /** A view was handed out for good: never reuse it. */
  given = false;
  /** Reads have moved on to another block. */
  retired = false;
  private readonly owner: RxBuffers;

  constructor(owner: RxBuffers, size: number) {
    this.owner = owner;
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  /** A view into this block is kept (by a message's queue). */
  hold(): void {
    this.refs++;
  }

  /** A view held is no longer needed. */
  release(): void {
    if (--this.refs === 0 && this.retired && !this.given) this.owner.recycle(this);
  }

  /**
   * The application keeps `view` (into this block), less its first `skip`
   * octets, for good: returns a copy when it is short (and releases the
   * view), else the view itself, and the block is never reused.
   */
  own(view: Buffer, skip = 0): Buffer {
    const n = view.length - skip;
    if (n < OWN_COPY_BELOW) {
      const copy = Buffer.allocUnsafe(n);
      // From an offset, Buffer#copy makes a view first: a short copy is done here.
      if (skip === 0 || n > SHORT_COPY) view.copy(copy, 0, skip);
      else for (let i = 0; i < n; i++) copy[i] = view[skip + i] as number;
      this.release();
      return copy;
    }
    this.given = true;
    this.refs--;
    return skip === 0 ? view : view.subarray(skip);
  }
}

/** The blocks of one transport: reads go into the current one, in order. */
export class RxBuffers {
  private cur: RxBlock;
  private pos = 0;
  private readonly free: RxBlock[] = [];
  /** Blocks allocated and blocks reused (for stats and tests). */
  allocated = 1;
  reused = 0;

  constructor() {
    this.cur = new RxBlock(this, BLOCK);
  }

  /** The block the last read landed in. */
  get current(): RxBlock {
    return this.cur;
  }

  /**
   * Where the next read goes (net's `onread.buffer`). When nothing holds a
   * view into the current block (the common case between small messages:
   * their octets were taken or copied), the read goes to its start again,
   * and the block itself is the buffer: no view is made per read.
   */
  readonly next = (): Buffer => {
    const cur = this.cur;
    if (cur.refs === 0 && !cur.given) this.pos = 0;
    else if (cur.buf.length - this.pos < MIN_READ) this.rotate();
    return this.pos === 0 ? this.cur.buf : this.cur.buf.subarray(this.pos);
  };

  /** A read of `n` octets landed at the current position: its view. */
  landed(n: number): Buffer {
    const v = this.cur.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  private rotate(): void {
    const old = this.cur;
    old.retired = true;
    const b = this.free.pop();
    if (b !== undefined) {
      b.retired = false;
      this.reused++;
      this.cur = b;
    } else {
      this.allocated++;
      this.cur = new RxBlock(this, BLOCK);
    }
    this.pos = 0;
    if (old.refs === 0 && !old.given) this.recycle(old);
  }

  /** @internal A retired block nobody holds. */
  recycle(b: RxBlock): void {
    if (this.free.length < MAX_FREE) this.free.push(b);
  }
}
