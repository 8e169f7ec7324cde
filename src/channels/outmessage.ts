/**
 * @internal
 * Outbound message bodies: {@link OutboundMessage}, the send queue of one
 * message (fed from a buffer, an iterable or a stream, drained frame by
 * frame by the scheduler as the peer's window allows, reused once sent when
 * nothing but the core holds it), and the body helpers. Re-exported by
 * `message.ts`.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepError, ErrorCodes } from '../errors.js';
import type { BodyInit, MessageType } from './message.js';
import type { ReleaseLedger, Releasing } from './release.js';

/** Spare {@link OutboundMessage}s (see {@link OutboundMessage.make}); bounded. */
const spareOut: OutboundMessage[] = [];
const SPARE_OUT = 256;

/** @internal The send queue of one outbound message. */
export class OutboundMessage implements Releasing {
  type: MessageType | 'NUL';
  msgno: number;
  ansno: number | undefined;
  /**
   * Nothing but the core holds this message (a whole reply sent with
   * `Responder.send`, or one whose waiter needs nothing more of it): once its
   * final frame is out and its waiters told, it goes back to the spares.
   */
  reusable = false;
  /**
   * @internal A reusable MSG's pending request (its `out` is this message):
   * cleared when the message is recycled, so nothing refers to it once reused.
   */
  request: { out: OutboundMessage | null } | null = null;

  /** A message from the spares, or a new one. */
  static make(type: MessageType | 'NUL', msgno: number, ansno?: number): OutboundMessage {
    const m = spareOut.pop();
    if (m === undefined) return new OutboundMessage(type, msgno, ansno);
    m.type = type;
    m.msgno = msgno;
    m.ansno = ansno;
    if (type === 'NUL') m.ended = true;
    return m;
  }

  /**
   * @internal Back to the spares once its final frame is out and its waiters
   * were told, if {@link reusable} (else nothing happens): every field is as
   * a new message's. The caller holds no reference to it after this.
   */
  static recycle(m: OutboundMessage): void {
    if (!m.reusable || !m.done || m.drainWaiters !== null) return;
    // A MSG: its pending request no longer needs it (a sent MSG is only ever asked whether it was sent).
    if (m.request !== null) {
      m.request.out = null;
      m.request = null;
    }
    if (spareOut.length >= SPARE_OUT) return;
    if (m.parts !== null && m.parts.length > 0) m.parts = null; // (emptied by take: kept, with its room)
    m.offset = 0;
    m.queued = 0;
    m.ended = false;
    m.started = false;
    m.done = false;
    m.onDone = undefined;
    m.resolveDone = undefined;
    m.completes = undefined;
    m.onFail = undefined;
    m.holdAfter = false;
    m.truncated = false;
    m.headLength = 0;
    m.taken = 0;
    m.reusable = false;
    m.total = 0;
    spareOut.push(m);
  }
  /**
   * Queued buffers; the first may be partly sent (see {@link offset}). Made
   * at the first write with room for two (a head and a body), not the 17
   * slots a growing empty array takes; kept when the message is reused.
   */
  private parts: Uint8Array[] | null = null;
  private offset = 0;
  /** Octets queued and not yet framed. */
  queued = 0;
  /** Octets ever queued (entity headers included), plus octets dropped before they were queued. */
  total = 0;
  /**
   * @internal Told how many body octets the core no longer references (see
   * `RequestOptions.onReleased`); null: nobody asked (the common case).
   */
  onReleased: ((octets: number) => void) | null = null;
  /** @internal The ledger that times {@link onReleased} (set with it). */
  ledger: ReleaseLedger | null = null;
  /** @internal Octets of entity headers in front of the body (not counted as body octets released). */
  releaseBase = 0;
  /** @internal Body octets reported released so far. */
  releasedOctets = 0;
  /** No more octets will be added. */
  ended = false;
  /** At least one frame has been sent. */
  started = false;
  /** The final frame has been sent. */
  done = false;
  /** Called once the final frame has been handed to the transport. */
  onDone: (() => void) | undefined;
  /** Resolves the promise of whoever waits for the final frame to go out (`whenDone`). */
  resolveDone: (() => void) | undefined;
  /** @internal The inbound MSG whose reply this message completes, opaque here: the core is told once it is out. */
  completes: unknown;
  /** Called if the message can never be sent (session or channel gone). */
  onFail: ((err: Error) => void) | undefined;
  /** Called when queued octets fall to or below the high-water mark (null: none yet). */
  private drainWaiters: (() => void)[] | null = null;
  /** Hold all further output of the session once this message's last frame is out (tuning). */
  holdAfter = false;
  /** Set when the message was cut short (pre-emptive ERR, abort). */
  truncated = false;

  constructor(type: MessageType | 'NUL', msgno: number, ansno?: number) {
    this.type = type;
    this.msgno = msgno;
    this.ansno = ansno;
    if (type === 'NUL') this.ended = true;
  }

  /** Queue octets (referenced, not copied). */
  write(chunk: Uint8Array): void {
    if (this.ended) throw new BeepError(ErrorCodes.INVALID_STATE, 'write after end of message');
    if (chunk.byteLength === 0) return;
    const p = this.parts;
    if (p === null) {
      // Room for two (a head and a body) from the start: popping keeps it, and
      // `take` empties the array without shrinking it, so a reused message
      // (see `make`) writes into the same array again.
      const a = [chunk, chunk];
      a.pop();
      this.parts = a;
    } else p.push(chunk);
    this.queued += chunk.byteLength;
    this.total += chunk.byteLength;
  }

  /**
   * @internal Track the release of this message's body (see
   * `RequestOptions.onReleased`): `base` octets of entity headers lead the
   * body. A tracked message is never reused (its ledger refers to it).
   */
  trackRelease(ledger: ReleaseLedger, onReleased: (octets: number) => void, base: number): void {
    this.ledger = ledger;
    this.onReleased = onReleased;
    this.releaseBase = base;
    this.reusable = false;
  }

  /**
   * @internal A body chunk the core took from its source but will not send
   * (the message ended meanwhile): counted as queued and dropped at once.
   */
  dropChunk(octets: number): void {
    this.total += octets;
    this.ledger?.note(this, this.total - this.queued - this.releaseBase);
  }

  /** @internal See {@link Releasing}: report body octets up to `mark` released. */
  deliverRelease(mark: number): void {
    const f = this.onReleased;
    if (f === null || mark <= this.releasedOctets) return;
    this.releasedOctets = mark;
    try {
      f(mark);
    } catch (err) {
      this.ledger?.onError(err);
    }
  }

  end(): void {
    this.ended = true;
  }

  /** Drop what is unsent and end the message: its next frame is its last. */
  truncate(): void {
    this.parts = null;
    this.offset = 0;
    this.queued = 0;
    this.ended = true;
    this.truncated = true;
    // What was not framed is dropped: released behind the frames in flight.
    this.ledger?.note(this, this.total - this.releaseBase);
    this.fireDrain();
  }

  /**
   * Octets of entity headers at the front of a streamed message: they are not
   * sent alone in a frame of their own while the body has not started.
   */
  headLength = 0;

  /** Whether a frame can be produced now (data queued, or an end to send). */
  get sendable(): boolean {
    return !this.done && (this.ended || this.queued > (this.started ? 0 : this.headLength));
  }

  /** Queue the entity-header block that starts a streamed message. */
  writeHead(head: Uint8Array): void {
    this.write(head);
    this.headLength = head.byteLength;
  }

  /** How many views the last {@link take} wrote. */
  taken = 0;

  /**
   * Take up to `max` octets as views for one frame, written to `out` from
   * index 0 (their number in {@link taken}); returns their octets.
   * {@link done} is set when they end the message.
   */
  take(max: number, out: Uint8Array[]): number {
    let size = 0;
    let k = 0;
    const parts = this.parts;
    while (size < max && parts !== null && parts.length > 0) {
      const p = parts[0] as Uint8Array;
      const avail = p.byteLength - this.offset;
      const n = Math.min(avail, max - size);
      out[k++] = n === p.byteLength ? p : p.subarray(this.offset, this.offset + n);
      size += n;
      if (n === avail) {
        parts.shift();
        this.offset = 0;
      } else {
        this.offset += n;
      }
    }
    this.queued -= size;
    this.taken = k;
    this.started = true;
    if (this.ended && this.queued === 0) this.done = true;
    // Tracked (see onReleased): the body is framed up to here, released once the write is done.
    if (this.ledger !== null) this.ledger.note(this, this.total - this.queued - this.releaseBase);
    return size;
  }

  /** Resolve once queued octets are at or below `hwm`. */
  waitDrain(hwm: number): Promise<void> | null {
    if (this.queued <= hwm) return null;
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /** @internal Writers wait for room. */
  get drainWaiting(): boolean {
    return this.drainWaiters !== null && this.drainWaiters.length > 0;
  }

  /** @internal Wake writers waiting for room. */
  fireDrain(): void {
    const w = this.drainWaiters;
    if (w === null || w.length === 0) return;
    this.drainWaiters = null;
    for (const f of w) f();
  }
}

/** Normalise a chunk of a body to bytes. */
export function toBytes(chunk: Uint8Array | string): Uint8Array {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
}

/** True when a body can be queued at once, without a pump. */
export function isImmediateBody(body: BodyInit | undefined): body is string | Uint8Array | undefined {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/** Iterate any non-immediate body as chunks. */
export function bodyChunks(body: Exclude<BodyInit, string | Uint8Array>): AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> {
  if (Symbol.asyncIterator in (body as object)) return body as AsyncIterable<Uint8Array | string>;
  if (Symbol.iterator in (body as object)) return body as Iterable<Uint8Array | string>;
  throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'body must be a string, Uint8Array, iterable or readable stream');
}
