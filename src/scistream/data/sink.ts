/**
 * The tunnel → application direction: the body of the peer's streaming MSG,
 * read as views into the session's receive memory (`msg.views()`), written
 * to the application socket.
 *
 * A view is valid only until the next step of the iteration: then its block
 * of receive memory is reused for later socket reads. A socket write that
 * does not complete at once keeps referencing what it was given, so a view
 * cannot be handed to the socket and the iteration moved on. Each view is
 * therefore copied into an output slab of our own (1 MiB, reused once every
 * write from it has completed) and the iteration moves on at once, which
 * lets the receive memory be reused and reopens the channel's window; the
 * slab's filled part is written once per event-loop turn (in `setImmediate`,
 * after the poll phase), so every piece decoded from the reads of one turn
 * goes to the application in one write. One copy (≈ 0.1 CPU s/GiB) instead
 * of one `ArrayBuffer` per piece: no allocation per octet, no garbage, and
 * about one write system call per turn instead of one per TLS record.
 *
 * Backpressure: the iteration waits (the window stays closed) while
 * {@link SinkOptions.highWater} octets or more are written but not yet
 * accepted by the kernel; rate: it waits while the token bucket is in debt.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Writable } from 'node:stream';
import type { IncomingMessage } from '../../channels/index.js';
import type { TokenBucket } from './bucket.js';

/** Size of an output slab. */
export const SINK_SLAB = 1024 * 1024;
/** Free slabs kept for reuse. */
const MAX_FREE = 2;
/**
 * Default of {@link SinkOptions.highWater}: octets written to the
 * application socket and not yet taken by the kernel before the sink stops
 * taking views. A socket's own mark (16 KiB) is far below one turn's worth.
 */
export const SINK_HIGH_WATER = 4 * 1024 * 1024;

/** Options of {@link writeViews}. */
export interface SinkOptions {
  /** Stop taking views once this many octets wait in the destination (default {@link SINK_HIGH_WATER}). */
  highWater?: number;
  /** Rate limit shared with other streams of the same direction. */
  bucket?: TokenBucket | undefined;
  /** Called with each view's size as it is taken for the destination. */
  count?: (n: number) => void;
  /** The whole body was taken and handed to the destination (not yet necessarily flushed). */
  onEnd: () => void;
  /** The message failed (session or channel gone) before its end. */
  onFail: (err: unknown) => void;
}

/** A running {@link writeViews}. */
export interface Sink {
  /** Stop: no more views are taken (those held are released), nothing more is written. */
  stop(): void;
}

/** A slab of output memory with the writes still referencing it. */
class Slab {
  readonly buf: Buffer;
  /** Writes from it not yet completed. */
  pending = 0;
  /** The sink has moved on to another slab. */
  retired = false;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }
}

/**
 * Write the body of `msg` to `dst` until it ends (then `onEnd`; `dst` is not
 * ended — the caller decides) or fails (`onFail`). See the module comment.
 */
export function writeViews(msg: Pick<IncomingMessage, 'views'>, dst: Writable, options: SinkOptions): Sink {
  const { bucket, count, onEnd, onFail } = options;
  const highWater = options.highWater ?? SINK_HIGH_WATER;
  const free: Slab[] = [];
  let slab = new Slab(SINK_SLAB);
  /** Start of the part of the slab not yet written, and its end. */
  let start = 0;
  let pos = 0;
  let scheduled = false;
  let stopped = false;
  /** The loop waits for this (drain, rate, stop). */
  let wake: (() => void) | null = null;
  const resume = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const sleep = (): Promise<void> => new Promise((r) => (wake = r));

  const recycle = (s: Slab): void => {
    if (s.retired && s.pending === 0 && s.buf.length === SINK_SLAB && free.length < MAX_FREE) free.push(s);
  };
  /** The next slab: twice the last one up to {@link SINK_SLAB}, reused when one is free. */
  const take = (last: number): Slab => {
    if (last < SINK_SLAB) return new Slab(Math.min(2 * last, SINK_SLAB));
    const s = free.pop();
    if (s === undefined) return new Slab(SINK_SLAB);
    s.retired = false;
    return s;
  };
  const flush = (): void => {
    scheduled = false;
    if (pos === start || stopped) return;
    if (dst.destroyed || dst.writableEnded) {
      start = pos;
      return;
    }
    const s = slab;
    s.pending++;
    const chunk = s.buf.subarray(start, pos);
    start = pos;
    dst.write(chunk, () => {
      s.pending--;
      recycle(s);
    });
  };
  const schedule = (): void => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  /** Copy `v` into the slabs (flushing a full one). */
  const put = (v: Buffer): void => {
    let off = 0;
    while (off < v.length) {
      if (pos === slab.buf.length) {
        flush();
        const last = slab;
        last.retired = true;
        recycle(last);
        slab = take(last.buf.length);
        start = 0;
        pos = 0;
      }
      const n = Math.min(v.length - off, slab.buf.length - pos);
      v.copy(slab.buf, pos, off, off + n);
      pos += n;
      off += n;
    }
    schedule();
  };
  const onDrain = (): void => resume();

  const run = async (): Promise<void> => {
    for await (const v of msg.views()) {
      if (stopped) return;
      if (dst.destroyed || dst.writableEnded) continue; // dropped, uncounted: its owner sees why
      count?.(v.length);
      put(v);
      if (bucket) {
        const wait = bucket.take(v.length);
        if (wait > 0) {
          const t = setTimeout(resume, wait);
          await sleep();
          clearTimeout(t);
          if (stopped) return;
        }
      }
      if (dst.writableLength + (pos - start) >= highWater && !dst.destroyed) {
        // Written but not accepted: wait for the destination, not the window.
        flush();
        if (dst.writableLength >= highWater) {
          dst.once('drain', onDrain);
          dst.once('close', onDrain);
          await sleep();
          dst.off('drain', onDrain);
          dst.off('close', onDrain);
          if (stopped) return;
        }
      }
    }
    if (stopped) return;
    flush();
    stopped = true;
    onEnd();
  };
  run().catch((err: unknown) => {
    if (stopped) return;
    stopped = true;
    onFail(err);
  });
  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      resume();
    },
  };
}
