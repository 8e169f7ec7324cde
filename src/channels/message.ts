/**
 * Message bodies in both directions.
 *
 * {@link IncomingMessage} is a Readable whose octets count against the
 * channel's receive window until the application reads them: the window
 * reopens only as it does. {@link OutboundMessage} is the send queue of one
 * message, fed from a buffer, an iterable or a stream, and drained frame by
 * frame by the scheduler as the peer's window allows.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import { parseEntityHeaders, type ParsedEntity, DEFAULT_CONTENT_TYPE, DEFAULT_TRANSFER_ENCODING } from '../framing/index.js';

/** Keywords of messages that carry a body. */
export type MessageType = 'MSG' | 'RPY' | 'ERR' | 'ANS';

/** Anything accepted as a message body. */
export type BodyInit =
  | string
  | Uint8Array
  | Iterable<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>
  | NodeJS.ReadableStream;

/** Hooks the channel layer gives each incoming message. */
export interface IncomingHooks {
  /** The application consumed `n` octets: reopen the window by that much. */
  credit(n: number): void;
  /** The MIME entity headers have been parsed (the body may now be read). */
  ready(msg: IncomingMessage): void;
  maxEntityHeaders: number;
  maxMessageSize: number;
}

/**
 * A message received from the peer. Read its body as a stream, or collect it
 * with {@link bytes}, {@link text} or {@link dump}.
 */
export class IncomingMessage extends Readable {
  /** `MSG`, `RPY`, `ERR` or `ANS`. */
  readonly type: MessageType;
  /** Channel number. */
  readonly channel: number;
  /** Message number. */
  readonly msgno: number;
  /** Answer number (ANS only). */
  readonly ansno: number | undefined;
  /** `Content-Type`, defaulting to `application/octet-stream` (RFC 3080 §2.2). */
  contentType = DEFAULT_CONTENT_TYPE;
  /** `Content-Transfer-Encoding`, defaulting to `binary`. */
  transferEncoding = DEFAULT_TRANSFER_ENCODING;
  /** Every entity header received, names lower-cased. */
  headers: Record<string, string> = {};

  /** Why the message failed (session or channel gone), if it did. */
  failure: Error | undefined;
  /** @internal */ headReady = false;
  /** @internal */ complete = false;
  /** @internal octets received so far (head included). */ received = 0;
  private head: Buffer | null = null;
  private queue: Buffer[] = [];
  private wantMore = false;
  private dumping = false;
  private readyFired = false;
  private pushedEnd = false;
  /** bytes() took the whole body; the stream ends when next read (see {@link _read}). */
  private taken = false;
  /** Octets handed to the stream's own buffer and not yet read by the application (not yet credited). */
  private unread = 0;
  private readonly hooks: IncomingHooks;

  /** @internal */
  constructor(type: MessageType, channel: number, msgno: number, ansno: number | undefined, hooks: IncomingHooks) {
    super({ highWaterMark: 64 * 1024 });
    this.type = type;
    this.channel = channel;
    this.msgno = msgno;
    this.ansno = ansno;
    this.hooks = hooks;
  }

  /** @internal Append a frame's payload; `final` when it was the message's last frame. */
  deliver(payload: Uint8Array, final: boolean): void {
    this.received += payload.byteLength;
    if (this.dumping) {
      if (payload.byteLength > 0) this.hooks.credit(payload.byteLength);
      if (final) {
        this.complete = true;
        this.drainQueue();
      }
      return;
    }
    let body: Buffer | null = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (!this.headReady) {
      const head: Buffer = this.head ? Buffer.concat([this.head, body]) : body;
      const parsed: ParsedEntity | null = parseEntityHeaders(head, final, this.hooks.maxEntityHeaders);
      if (parsed === null) {
        this.head = head;
        body = null;
      } else {
        this.head = null;
        this.contentType = parsed.contentType;
        this.transferEncoding = parsed.transferEncoding;
        this.headers = parsed.headers;
        this.headReady = true;
        // The header octets are consumed by us, not the application.
        if (parsed.bodyOffset > 0) this.hooks.credit(parsed.bodyOffset);
        body = head.subarray(parsed.bodyOffset);
      }
    }
    if (body !== null && body.length > 0) {
      if (this.dumping) this.hooks.credit(body.length);
      else this.queue.push(body);
    }
    if (final) this.complete = true;
    if (this.headReady && (body !== null || final)) {
      if (!this.readyFired) {
        this.readyFired = true;
        this.hooks.ready(this);
      }
      if (this.wantMore || this.dumping) this.drainQueue();
    }
  }

  /** @internal Reopen the window for whatever is still queued (message abandoned). */
  discard(): void {
    this.dumping = true;
    let n = 0;
    for (const b of this.queue) n += b.length;
    this.queue = [];
    if (this.head) {
      n += this.head.length;
      this.head = null;
    }
    if (n > 0) this.hooks.credit(n);
    this.drainQueue();
    // Nothing to flow once bytes() took the body.
    if (!this.taken) this.resume();
  }

  /**
   * @internal The message will never complete (session or channel gone). Emits
   * `error` only to a listener that exists, so an unread body can never crash
   * the process; readers and {@link bytes} see `failure`.
   */
  fail(err: Error): void {
    if (this.destroyed) return;
    this.failure = err;
    if (this.listenerCount('error') > 0) this.destroy(err);
    else this.destroy();
  }

  /**
   * Readable internals: every read (flowing mode, `read()`, async iteration)
   * goes through here; octets leaving the stream's buffer reopen the window
   * only now, so a reader that lets them sit holds its channel's window.
   */
  override read(size?: number): Buffer | null {
    const r = super.read(size) as Buffer | null;
    if (r !== null && this.unread > 0) {
      const n = Math.min(r.length, this.unread);
      this.unread -= n;
      this.hooks.credit(n);
    }
    return r;
  }

  /** Readable internals: hand queued octets to the stream (reopening the window as they are read). */
  override _read(): void {
    if (this.taken) {
      // bytes() took the whole body: end the stream only now that someone reads it.
      this.taken = false;
      this.push(null);
      return;
    }
    this.wantMore = true;
    this.drainQueue();
  }

  private drainQueue(): void {
    if (this.dumping) {
      if (this.complete && !this.pushedEnd) {
        this.pushedEnd = true;
        this.push(null);
      }
      return;
    }
    let credited = 0;
    while (this.queue.length > 0 && this.wantMore) {
      const b = this.queue.shift() as Buffer;
      const before = this.readableLength;
      this.wantMore = this.push(b);
      // Emitted to a 'data' listener at once: consumed now. Otherwise it waits
      // in the stream's buffer and is credited when the application reads it.
      if (this.readableLength - before >= b.length) this.unread += b.length;
      else credited += b.length;
    }
    if (credited > 0) this.hooks.credit(credited);
    if (this.queue.length === 0 && this.complete && !this.pushedEnd) {
      this.pushedEnd = true;
      this.push(null);
    }
  }

  /**
   * Collect the whole body. Rejects with `BEEP_ERR_MESSAGE_TOO_LARGE` (and
   * discards the rest) past `maxBytes` (default: the session's maxMessageSize).
   */
  async bytes(maxBytes = this.hooks.maxMessageSize): Promise<Buffer> {
    if (this.failure) throw this.failure;
    if (this.complete && this.headReady && !this.dumping && !this.pushedEnd && this.readableLength === 0 && this.listenerCount('data') === 0) {
      // Fast path: the whole body is here and nothing has been read — join it
      // directly rather than through the stream machinery.
      let n = 0;
      for (const b of this.queue) n += b.length;
      if (n > maxBytes) {
        this.discard();
        throw new BeepError(ErrorCodes.MESSAGE_TOO_LARGE, `message body exceeds ${maxBytes} octets`);
      }
      const parts = this.queue;
      this.queue = [];
      if (n > 0) this.hooks.credit(n);
      // The stream is not ended here (that costs a chain of ticks per message): a
      // stream method used later finds it empty and ends it then (see _read).
      this.taken = true;
      this.pushedEnd = true;
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
    }
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of this) {
        n += (chunk as Buffer).length;
        if (n > maxBytes) {
          this.discard();
          throw new BeepError(ErrorCodes.MESSAGE_TOO_LARGE, `message body exceeds ${maxBytes} octets`);
        }
        parts.push(chunk as Buffer);
      }
    } catch (err) {
      throw this.failure ?? err;
    }
    if (this.failure) throw this.failure;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  /** Collect the whole body as UTF-8 text. */
  async text(maxBytes?: number): Promise<string> {
    return (await this.bytes(maxBytes)).toString('utf8');
  }

  /** Throw the body away (reopening the window) and wait for its end. */
  async dump(): Promise<void> {
    if (this.readableEnded || this.destroyed || this.taken) return;
    const done = new Promise<void>((resolve, reject) => {
      this.once('end', resolve);
      this.once('error', reject);
      this.once('close', resolve);
    });
    this.discard();
    await done;
  }
}

// ------------------------------------------------------------------ outbound

/** @internal The send queue of one outbound message. */
export class OutboundMessage {
  readonly type: MessageType | 'NUL';
  readonly msgno: number;
  readonly ansno: number | undefined;
  /** Queued buffers; the first may be partly sent (see {@link offset}). */
  private parts: Uint8Array[] = [];
  private offset = 0;
  /** Octets queued and not yet framed. */
  queued = 0;
  /** No more octets will be added. */
  ended = false;
  /** At least one frame has been sent. */
  started = false;
  /** The final frame has been sent. */
  done = false;
  /** Called once the final frame has been handed to the transport. */
  onDone: (() => void) | undefined;
  /** Called if the message can never be sent (session or channel gone). */
  onFail: ((err: Error) => void) | undefined;
  /** Called when queued octets fall to or below the high-water mark. */
  private drainWaiters: (() => void)[] = [];
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
    this.parts.push(chunk);
    this.queued += chunk.byteLength;
  }

  end(): void {
    this.ended = true;
  }

  /** Drop what is unsent and end the message: its next frame is its last. */
  truncate(): void {
    this.parts = [];
    this.offset = 0;
    this.queued = 0;
    this.ended = true;
    this.truncated = true;
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

  /** Take up to `max` octets as views for one frame; `last` when it ends the message. */
  take(max: number): { parts: Uint8Array[]; size: number; last: boolean } {
    const out: Uint8Array[] = [];
    let size = 0;
    while (size < max && this.parts.length > 0) {
      const p = this.parts[0] as Uint8Array;
      const avail = p.byteLength - this.offset;
      const n = Math.min(avail, max - size);
      out.push(n === p.byteLength ? p : p.subarray(this.offset, this.offset + n));
      size += n;
      if (n === avail) {
        this.parts.shift();
        this.offset = 0;
      } else {
        this.offset += n;
      }
    }
    this.queued -= size;
    this.started = true;
    const last = this.ended && this.queued === 0;
    if (last) this.done = true;
    return { parts: out, size, last };
  }

  /** Resolve once queued octets are at or below `hwm`. */
  waitDrain(hwm: number): Promise<void> | null {
    if (this.queued <= hwm) return null;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** @internal Writers wait for room. */
  get drainWaiting(): boolean {
    return this.drainWaiters.length > 0;
  }

  /** @internal Wake writers waiting for room. */
  fireDrain(): void {
    if (this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
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
