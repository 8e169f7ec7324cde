/**
 * Moving octets from a Readable to a Writable with both kinds of pacing the
 * data plane needs: backpressure (pause the source while the destination is
 * full, resume on `drain`) and the session's rate (pause the source while the
 * token bucket is in debt). Nothing is buffered here: a paused TCP socket
 * stops reading, so its peer's TCP window closes; a paused incoming BEEP
 * message stops crediting its channel's window, so the remote sender stops.
 *
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { TokenBucket } from './bucket.js';

/**
 * Octets the pump lets queue in the destination before it pauses the source
 * (default of {@link PumpOptions.highWater}). A destination's own mark (16 KiB
 * for a socket) is far below what one TLS read decodes into, so pausing at it
 * would stop and restart the source on nearly every turn.
 */
export const PUMP_HIGH_WATER = 1024 * 1024;

/** Options of {@link pump}. */
export interface PumpOptions {
  /** Pause the source once this many octets wait in the destination (default {@link PUMP_HIGH_WATER}). */
  highWater?: number;
  /** Rate limit shared with other pumps of the same direction. */
  bucket?: TokenBucket | undefined;
  /** Called with each chunk's size as it is handed to the destination (dropped chunks are not counted). */
  count?: (n: number) => void;
  /** The source ended (all its octets written to the destination). */
  onEnd: () => void;
}

/** A running {@link pump}. */
export interface Pump {
  /** Stop moving octets (listeners removed, timers cleared); the source stays paused. */
  stop(): void;
}

const DRAIN = 1;
const RATE = 2;

/**
 * Copy `src` into `dst` until `src` ends (then `onEnd`; `dst` is not ended —
 * the caller decides). Chunks are passed on as they are, never copied, and
 * every chunk of one event-loop turn goes out in one vectored write: `dst` is
 * corked at the first and uncorked by `setImmediate`, after the poll phase,
 * not by `process.nextTick` — Node runs the tick queue after each callback
 * from native code, and a TLS socket emits every record of one read from its
 * own callback, so a tick-long cork wrote one record at a time. The source is
 * paused only once {@link PumpOptions.highWater} octets wait in `dst`, and
 * resumed on its `drain`. Chunks for a destroyed or ended destination are
 * dropped, uncounted (its owner sees the error).
 */
export function pump(src: Readable, dst: Writable, options: PumpOptions): Pump {
  const { bucket, count, onEnd } = options;
  const highWater = options.highWater ?? PUMP_HIGH_WATER;
  let holds = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const release = (hold: number): void => {
    holds &= ~hold;
    if (holds === 0 && !stopped) src.resume();
  };
  const onDrain = (): void => release(DRAIN);
  // Every chunk the source emits in one turn (a TLS read decodes into many
  // pieces) goes to the destination in one vectored write, not one each.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    if (!dst.destroyed && dst.writableCorked > 0) dst.uncork();
  };
  const onData = (chunk: Buffer): void => {
    if (stopped || dst.destroyed || dst.writableEnded) return;
    count?.(chunk.length);
    if (!corked) {
      corked = true;
      dst.cork();
      setImmediate(uncork);
    }
    // write() says false past the destination's own (small) mark, and then
    // 'drain' is due once its buffer empties: wait for it only past ours.
    if (!dst.write(chunk) && dst.writableLength >= highWater && (holds & DRAIN) === 0) {
      holds |= DRAIN;
      src.pause();
      dst.once('drain', onDrain);
    }
    if (bucket) {
      const wait = bucket.take(chunk.length);
      if (wait > 0 && (holds & RATE) === 0) {
        holds |= RATE;
        src.pause();
        timer = setTimeout(() => {
          timer = undefined;
          release(RATE);
        }, wait);
      }
    }
  };
  const onSrcEnd = (): void => {
    stop();
    onEnd();
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (!src.readableEnded) src.pause();
    src.off('data', onData);
    src.off('end', onSrcEnd);
    dst.off('drain', onDrain);
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  if (src.readableEnded) {
    // The source ended before anyone read it (nothing was in it).
    queueMicrotask(() => {
      if (!stopped) onSrcEnd();
    });
    return { stop };
  }
  src.on('data', onData);
  src.once('end', onSrcEnd);
  src.resume();
  return { stop };
}
