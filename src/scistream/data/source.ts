/**
 * The application → tunnel direction: the application socket read in large
 * reads straight into memory the body of our streaming MSG is made of.
 *
 * The socket reads into slabs of 1 MiB (the first 128 KiB, doubling, so a
 * short stream stays small) (net's `onread`, through the transport
 * layer's `readInto`): each read is offered the rest of the current slab, so
 * one read takes whatever the kernel holds (not Node's fixed 64 KiB), and
 * consecutive reads lie side by side in the slab and go to the core as one
 * view. The views are the message body itself (`channel.request(source)`:
 * no `PassThrough`, no copy); the core references them until they are
 * framed and their transport write has completed. With
 * {@link SourceOptions.recycle} the consumer says how far that is
 * ({@link SocketSource.released}, fed from the request's `onReleased`), and
 * a full slab whose every octet is released is read into again (a few kept
 * spare per stream): reads then allocate nothing in the steady state.
 * Without it a slab is never reused — one 1 MiB allocation per MiB read.
 * Where `readInto` cannot be used the socket's `'data'` chunks are passed on
 * as they are.
 *
 * Backpressure: reading stops while {@link SourceOptions.highWater} octets
 * read are not yet taken by the core (which takes them only as the peer's
 * window allows), so the application's TCP window closes; rate: reading
 * stops while the token bucket is in debt.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { readInto } from '../../transports/index.js';
import type { TokenBucket } from './bucket.js';

/** Size of a read slab once a stream has carried a few MiB (the first is 128 KiB, doubling). */
export const SOURCE_SLAB = 1024 * 1024;
/** The first slab of a stream: a short stream does not cost a MiB per connection. */
const FIRST_SLAB = 128 * 1024;
/** A read is offered at least this much room (else a new slab is taken). */
const MIN_READ = 64 * 1024;
/** Released slabs kept for reuse per stream (beyond them a released slab is left to the GC). */
export const SPARE_SLABS = 4;
/** Default of {@link SourceOptions.highWater}. */
export const SOURCE_HIGH_WATER = 2 * 1024 * 1024;

/** Options of a {@link SocketSource}. */
export interface SourceOptions {
  /** Stop reading once this many octets read wait for the core (default {@link SOURCE_HIGH_WATER}). */
  highWater?: number;
  /** Rate limit shared with other streams of the same direction. */
  bucket?: TokenBucket | undefined;
  /**
   * The consumer reports, through {@link SocketSource.released}, how many of
   * the octets it took it no longer references (e.g. the request's
   * `onReleased`): full slabs are then reused once released. Never set it
   * for a consumer that keeps chunks past that point.
   */
  recycle?: boolean;
  /** Called with each read's size. */
  count?: (n: number) => void;
  /** The application half-closed (every octet it sent is read; the iteration ends once they are taken). */
  onEnd: () => void;
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
const EMPTY = Buffer.alloc(0);

/**
 * The octets an application socket sends, as an `AsyncIterable` body for
 * `channel.request()`. Reading starts with {@link start}.
 */
export class SocketSource implements AsyncIterableIterator<Buffer> {
  private readonly socket: net.Socket;
  private readonly opts: SourceOptions;
  private readonly highWater: number;
  private queue: Buffer[] = [];
  private queued = 0;
  private slab: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Reading is held back: bit 1 backpressure, bit 2 rate. */
  private holds = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Reading stopped for good. */
  private stopped = false;
  /** The iteration ends once the queue is empty (application FIN, or {@link end}). */
  private ending = false;
  private waiter: ((r: IteratorResult<Buffer, undefined>) => void) | null = null;
  /** Reads land in our slabs (else `'data'` chunks). */
  private recycled = false;
  /** Octets read so far (where the current slab's data ends, counted from the stream's start). */
  private readTotal = 0;
  /** Full slabs no longer read into, oldest first, with where their data ends (see {@link readTotal}). */
  private readonly retired: Buffer[] = [];
  private readonly retiredEnds: number[] = [];
  /** Released slabs ready to be read into again. */
  private readonly spare: Buffer[] = [];
  /** Octets the consumer no longer references ({@link released}). */
  private releasedTo = 0;
  /** Read slabs allocated so far (for tests and diagnostics). */
  slabsAllocated = 0;
  /** Read slabs taken from the spares so far, i.e. reused (for tests and diagnostics). */
  slabsReused = 0;

  constructor(socket: net.Socket, options: SourceOptions) {
    this.socket = socket;
    this.opts = options;
    this.highWater = options.highWater ?? SOURCE_HIGH_WATER;
  }

  /** Start reading the socket (it must be paused and unread so far). */
  start(): void {
    const s = this.socket;
    this.recycled = readInto(s, {
      buffer: this.nextBuffer,
      callback: (n) => this.landed(n),
    });
    if (!this.recycled) s.on('data', (chunk: Buffer) => void this.push(chunk));
    s.once('end', () => this.confirmEnd());
    s.resume();
  }

  /**
   * The application's EOF, forwarded only once it is known to be a FIN. libuv
   * reports a peer's RST that arrives with the last octets as EOF (a partial
   * read with POLLHUP), leaving the error for the next write: an empty write,
   * queued behind ours, tells the two apart. On an error the socket's
   * `'error'` (a reset) is what its owner sees; the body is not ended.
   */
  private confirmEnd(): void {
    const s = this.socket;
    const done = (err?: Error | null): void => {
      if (err || this.stopped) return;
      this.opts.onEnd();
      this.end();
    };
    if (this.stopped) return;
    if (s.writable && !s.writableEnded) s.write(EMPTY, done);
    else done();
  }

  /** Where the next read goes: the rest of the current slab, or a new one. */
  private readonly nextBuffer = (): Buffer => {
    if (this.slab.length - this.pos < MIN_READ) {
      const old = this.slab;
      // A full-size slab waits for its release, then is read into again.
      if (this.opts.recycle === true && old.length === SOURCE_SLAB) {
        this.retired.push(old);
        this.retiredEnds.push(this.readTotal);
        this.reclaim();
      }
      const reused = old.length === SOURCE_SLAB ? this.spare.pop() : undefined;
      if (reused !== undefined) {
        this.slab = reused;
        this.slabsReused++;
      } else {
        this.slab = Buffer.allocUnsafeSlow(old.length === 0 ? FIRST_SLAB : Math.min(2 * old.length, SOURCE_SLAB));
        this.slabsAllocated++;
      }
      this.pos = 0;
    }
    return this.slab.subarray(this.pos);
  };

  /**
   * The consumer no longer references the first `octets` octets it took
   * (cumulative; see {@link SourceOptions.recycle}): slabs wholly behind
   * that are read into again.
   */
  released(octets: number): void {
    if (octets <= this.releasedTo) return;
    this.releasedTo = octets;
    this.reclaim();
  }

  /** Move retired slabs whose every octet is released to the spares. */
  private reclaim(): void {
    const ends = this.retiredEnds;
    while (ends.length > 0 && (ends[0] as number) <= this.releasedTo) {
      ends.shift();
      const slab = this.retired.shift() as Buffer;
      if (this.spare.length < SPARE_SLABS) this.spare.push(slab);
    }
  }

  /** A read of `n` octets landed at the current position. Returns false to stop reading. */
  private landed(n: number): boolean {
    const from = this.pos;
    this.pos += n;
    this.readTotal += n;
    const last = this.queue.length > 0 ? (this.queue[this.queue.length - 1] as Buffer) : null;
    if (last !== null && last.buffer === this.slab.buffer && last.byteOffset + last.length === this.slab.byteOffset + from) {
      // Side by side with the previous read: one view.
      this.queue[this.queue.length - 1] = this.slab.subarray(last.byteOffset - this.slab.byteOffset, this.pos);
      this.queued += n;
      return this.after(n);
    }
    return this.push(this.slab.subarray(from, this.pos));
  }

  private push(b: Buffer): boolean {
    if (this.stopped) return false;
    this.queue.push(b);
    this.queued += b.length;
    return this.after(b.length);
  }

  /** Count `n` octets read, wake the core, hold reading back if due. */
  private after(n: number): boolean {
    this.opts.count?.(n);
    this.wake();
    let go = true;
    if (this.queued >= this.highWater) {
      this.holds |= 1;
      go = false;
    }
    const bucket = this.opts.bucket;
    if (bucket) {
      const wait = bucket.take(n);
      if (wait > 0 && (this.holds & 2) === 0) {
        this.holds |= 2;
        go = false;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.release(2);
        }, wait);
      }
    }
    if (!go && !this.recycled) this.socket.pause();
    return go;
  }

  private release(hold: number): void {
    if ((this.holds & hold) === 0) return;
    this.holds &= ~hold;
    if (this.holds === 0 && !this.stopped && !this.socket.destroyed) this.socket.resume();
  }

  private wake(): void {
    const w = this.waiter;
    if (w === null) return;
    const b = this.queue.shift();
    if (b !== undefined) {
      this.waiter = null;
      this.queued -= b.length;
      w({ done: false, value: b });
      if (this.queued < this.highWater) this.release(1);
    } else if (this.ending) {
      this.waiter = null;
      w(DONE);
    }
  }

  /** The next chunk read (for the core). */
  next(): Promise<IteratorResult<Buffer, undefined>> {
    const b = this.queue.shift();
    if (b !== undefined) {
      this.queued -= b.length;
      if (this.queued < this.highWater) this.release(1);
      return Promise.resolve({ done: false, value: b });
    }
    if (this.ending) return Promise.resolve(DONE);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** The core stopped reading the body (the message is done or cut short). */
  return(): Promise<IteratorResult<Buffer, undefined>> {
    this.stop();
    this.ending = true;
    this.queue = [];
    this.queued = 0;
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Stop reading the socket (what was read stays queued; the iteration stays open until {@link end}). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.socket.destroyed && !this.socket.readableEnded) this.socket.pause();
  }

  /** End the iteration once what is queued has been taken. */
  end(): void {
    this.ending = true;
    this.wake();
  }
}
