/**
 * Moving object octets without extra copies: reading a received message
 * chunk by chunk as the session delivered it, and writing batches of chunks
 * to a reply with backpressure, so that a batch goes out as one frame.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import type { Readable, Writable } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';

/**
 * One waiter woken by events: `wait()` resolves at the next `poke()`. A poke
 * with nobody waiting is dropped — callers look at their state before they
 * wait, and every event that changes it pokes.
 */
class Signal {
  private waiter: (() => void) | null = null;

  /** Resolves at the next {@link poke}. */
  wait(): Promise<void> {
    return new Promise<void>((r) => (this.waiter = r));
  }

  /** Wake the waiter, if any (bound: usable as a listener). */
  readonly poke = (): void => {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  };
}

/** Chunks held before {@link chunksOf} pauses the message (its window stays shut meanwhile). */
const HOLD = 64;

/**
 * The chunks of a Readable exactly as it emits them. `for await` over a
 * Readable in paused mode calls `read()`, which concatenates everything
 * buffered into a fresh Buffer (a copy of every octet, and garbage); the
 * stream's flowing mode hands over each chunk as it was pushed — views of
 * the received frames. Ends with the stream; throws its error.
 */
export async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: unknown;
  const signal = new Signal();
  const { poke } = signal;
  const onData = (c: Buffer): void => {
    queue.push(c);
    if (queue.length >= HOLD) stream.pause();
    poke();
  };
  const onEnd = (): void => {
    ended = true;
    poke();
  };
  const onError = (err: unknown): void => {
    failure = err;
    poke();
  };
  // A stream destroyed without an error never ends: treat its close as a failure.
  const onClose = (): void => {
    if (!ended && failure === undefined) failure = new BeepError(ErrorCodes.ABORTED, 'the stream closed before its end');
    poke();
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('error', onError);
  stream.once('close', onClose);
  try {
    for (;;) {
      if (queue.length > 0) {
        // Hand out everything queued before the stream may flow again.
        const batch = queue.splice(0, queue.length);
        for (const c of batch) yield c;
        if (stream.isPaused()) stream.resume();
        continue;
      }
      if (failure !== undefined) throw failure;
      if (ended) return;
      await signal.wait();
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onError);
    stream.off('close', onClose);
  }
}

/** Paces a writer among others (see `shares.ts`): wait for a turn, then say how much was written. */
export interface Gate {
  turn(): Promise<void>;
  wrote(n: number): void;
}

/**
 * Write batches of chunks to `out` (a reply's answer stream), each batch in
 * one go — the session frames what one turn queued together, so a batch of
 * small chunks leaves as one frame of up to the frame size, not one frame per
 * chunk — waiting for `drain` between batches when `out` is full. Does not
 * end `out`. Throws if `out` fails or closes first.
 */
export async function writeBatches(batches: AsyncIterable<readonly Buffer[]>, out: Writable, onOctets?: (n: number) => void, gate?: Gate): Promise<void> {
  let failure: unknown;
  const signal = new Signal();
  const { poke } = signal;
  const onError = (err: unknown): void => {
    failure ??= err;
    poke();
  };
  const onClose = (): void => {
    failure ??= new BeepError(ErrorCodes.ABORTED, 'the reply closed before the object was written');
    poke();
  };
  out.on('error', onError);
  out.once('close', onClose);
  out.on('drain', poke);
  try {
    for await (const batch of batches) {
      if (failure !== undefined) throw failure;
      if (gate !== undefined) await gate.turn();
      if (failure !== undefined) throw failure;
      let room = true;
      let n = 0;
      for (const c of batch) {
        room = out.write(c);
        n += c.byteLength;
        onOctets?.(c.byteLength);
      }
      gate?.wrote(n);
      while (!room && out.writableNeedDrain && failure === undefined) await signal.wait();
      if (failure !== undefined) throw failure;
    }
  } finally {
    out.off('error', onError);
    out.off('close', onClose);
    out.off('drain', poke);
  }
}

/** A stream's chunks, one batch each; the stream is destroyed however the iteration ends. */
export async function* singles(stream: Readable): AsyncGenerator<Buffer[]> {
  try {
    for await (const c of chunksOf(stream)) yield [c];
  } finally {
    stream.destroy();
  }
}
