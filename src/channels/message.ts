/**
 * Message bodies in both directions.
 *
 * {@link IncomingMessage} is a Readable whose octets count against the
 * channel's receive window until the application reads them: the window
 * reopens only as it does. The outbound side, {@link OutboundMessage} (the
 * send queue of one message), is in `outmessage.ts` and re-exported here.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import type { RxBlock } from './rx.js';
import { parseEntityHeaders, type ParsedEntity, DEFAULT_CONTENT_TYPE, DEFAULT_TRANSFER_ENCODING, NO_HEADERS } from '../framing/index.js';

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

const EMPTY_BODY = Buffer.alloc(0);

// IncomingMessage's state bits.
const HEAD_READY = 1;
const COMPLETE = 2;
const DUMPING = 4;
const READY_FIRED = 8;
const TAKEN = 16;

/**
 * The block of the view `shiftView()` returned last, taken by its caller at
 * once (module state, not a field of every message).
 */
const shifted: { block: RxBlock | null } = { block: null };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

/**
 * A message received from the peer. Collect its body with {@link bytes},
 * {@link text} or {@link dump}, iterate it (`for await (const chunk of msg)`),
 * or read it as a stream: {@link stream} returns a `Readable`, and the
 * `Readable` methods below (`on('data')`, `pipe`, `read`, `pause`, …) act on
 * that stream.
 *
 * The stream is built only when one of them is first used, so a small
 * message collected with {@link bytes} costs no stream at all. Octets count
 * against the channel's receive window until the application takes them:
 * the window reopens only as it does.
 */
export class IncomingMessage {
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
  private hdrs: Record<string, string> | null = null;
  /** Every entity header received, names lower-cased. */
  get headers(): Record<string, string> {
    return (this.hdrs ??= {});
  }
  set headers(h: Record<string, string>) {
    this.hdrs = h;
  }

  /** Why the message failed (session or channel gone), if it did. */
  failure: Error | undefined;
  /**
   * The state bits ({@link HEAD_READY}, {@link COMPLETE}, {@link DUMPING},
   * {@link READY_FIRED}, {@link TAKEN}): one field, not five (a message is
   * made per MSG and per reply: issue 13). Each is only ever set
   * (`flags |= BIT`); the getters below read them.
   */
  private flags = 0;
  /** @internal The entity headers have been parsed. */
  get headReady(): boolean {
    return (this.flags & HEAD_READY) !== 0;
  }
  /** @internal The final frame has arrived. */
  get complete(): boolean {
    return (this.flags & COMPLETE) !== 0;
  }
  /** @internal The body is being thrown away (octets credited as they arrive). */
  get dumping(): boolean {
    return (this.flags & DUMPING) !== 0;
  }
  private get readyFired(): boolean {
    return (this.flags & READY_FIRED) !== 0;
  }
  /** The application took the whole body (bytes(), iteration, dump()). */
  private get taken(): boolean {
    return (this.flags & TAKEN) !== 0;
  }
  /** @internal octets received so far (head included). */ received = 0;
  private head: Buffer | null = null;
  /**
   * Body octets received and not yet taken by the application or its stream:
   * pairs of (view, the receive block it is in or null when the view owns its
   * memory), made on the first piece (one array, sized for it, not two empty ones).
   */
  private pieces: (Buffer | RxBlock | null)[] | null = null;
  /**
   * Header octets at the front of the first queued view (not body: see
   * {@link deliver}). They are credited to the window with the body's first
   * octets taken (one credit per small message, not two), or when the queue
   * is discarded.
   */
  private skip = 0;
  /** Wakes bytes()/iteration/dump() waiting for more octets, completion or failure. */
  private waiter: (() => void) | null = null;
  private adapter: MessageStream | null = null;
  /** @internal */ readonly hooks: IncomingHooks;
  /** @internal What the channel layer keeps with a reply (its pending request). */
  owner: unknown = undefined;

  /** @internal */
  constructor(type: MessageType, channel: number, msgno: number, ansno: number | undefined, hooks: IncomingHooks) {
    this.type = type;
    this.channel = channel;
    this.msgno = msgno;
    this.ansno = ansno;
    this.hooks = hooks;
  }

  /**
   * @internal Append a frame's payload; `final` when it was the message's last
   * frame. `block`: the receive block the payload is a view into (held while queued).
   */
  deliver(payload: Uint8Array, final: boolean, block: RxBlock | null = null): void {
    this.received += payload.byteLength;
    if (this.dumping) {
      if (payload.byteLength > 0) this.hooks.credit(payload.byteLength);
      if (final) this.completed();
      return;
    }
    let skip = 0;
    let body: Buffer | null = Buffer.isBuffer(payload) ? payload : payload.byteLength === 0 ? EMPTY_BODY : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    /** Header octets, consumed by us, not the application: credited once `ready` has run (below). */
    let headOctets = 0;
    if (!this.headReady) {
      if (this.head !== null) block = null; // joined below: a copy
      const head: Buffer = this.head ? Buffer.concat([this.head, body]) : body;
      const parsed: ParsedEntity | null = parseEntityHeaders(head, final, this.hooks.maxEntityHeaders);
      if (parsed === null) {
        // Kept across reads: it must own its octets.
        this.head = block === null ? head : Buffer.from(head);
        body = null;
      } else {
        this.head = null;
        this.contentType = parsed.contentType;
        this.transferEncoding = parsed.transferEncoding;
        if (parsed.headers !== NO_HEADERS) this.hdrs = parsed.headers;
        this.flags |= HEAD_READY;
        headOctets = parsed.bodyOffset;
        // The body follows the header block in the same view: kept as that view
        // and the header's length (`skip`); a view of the body alone is made
        // only if one is asked for (a short body taken whole is copied from it).
        if (parsed.bodyOffset >= head.length) body = EMPTY_BODY;
        else {
          body = head;
          skip = parsed.bodyOffset;
        }
      }
    }
    if (body !== null && body.length > skip) {
      if (this.pieces === null) {
        this.pieces = [body, block];
        this.skip = skip;
      } else this.pieces.push(body, block); // (skip is 0: the head was read with an earlier piece)
      block?.hold();
    }
    if (final) this.flags |= COMPLETE;
    if (this.headReady && (body !== null || final)) {
      if (!this.readyFired) {
        this.flags |= READY_FIRED;
        this.hooks.ready(this);
      }
      this.adapter?.fed();
      this.wake();
    }
    // After `ready`: a MSG has been handed on by now, so this credit finds none
    // waiting on the channel and asks for no flush of its own. Header octets
    // kept at the front of the queued body (`skip`) are credited with the body.
    if (headOctets > 0 && this.skip !== headOctets) this.hooks.credit(headOctets);
  }

  private completed(): void {
    this.flags |= COMPLETE;
    this.adapter?.fed();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** @internal Reopen the window for whatever is still queued (message abandoned). */
  discard(): void {
    this.flags |= DUMPING;
    let n = this.queuedLength() + this.skip; // the header octets in front of the body too (see skip)
    this.releaseQueued();
    if (this.head) {
      n += this.head.length;
      this.head = null;
    }
    if (n > 0) this.hooks.credit(n);
    this.adapter?.discarded(this.taken);
    this.wake();
  }

  /**
   * @internal The message will never complete (session or channel gone). Its
   * stream, if one was made, emits `error` only to a listener that exists, so
   * an unread body can never crash the process; readers and {@link bytes}
   * see `failure`.
   */
  fail(err: Error): void {
    if (this.failure !== undefined || (this.complete && this.adapter === null)) return;
    this.failure = err;
    this.releaseQueued();
    this.adapter?.failed(err);
    this.wake();
  }

  /** @internal Whether body octets are queued. */
  get hasQueued(): boolean {
    return this.pieces !== null && this.pieces.length > 0;
  }

  /** Octets queued. */
  private queuedLength(): number {
    const p = this.pieces;
    let n = -this.skip;
    if (p !== null) for (let i = 0; i < p.length; i += 2) n += (p[i] as Buffer).length;
    return n;
  }

  /** The first queued view (there is one), not credited; its block in {@link shifted}`.block`. */
  private shiftView(): Buffer {
    const p = this.pieces as (Buffer | RxBlock | null)[];
    let b = p.shift() as Buffer;
    shifted.block = p.shift() as RxBlock | null;
    const skip = this.skip;
    if (skip > 0) {
      b = b.subarray(skip);
      this.skip = 0;
      this.hooks.credit(skip); // the header octets in front of it (see skip)
    }
    return b;
  }

  /** Take every queued octet for good, appended to `parts` (crediting the window). */
  private takeQueued(parts: Buffer[]): void {
    const p = this.pieces;
    if (p === null) return;
    this.pieces = null;
    let skip = this.skip;
    this.skip = 0;
    let n = skip; // the header octets in front of the first view are credited with the body (see skip)
    for (let i = 0; i < p.length; i += 2) {
      const b = p[i] as Buffer;
      n += b.length - skip;
      const blk = p[i + 1] as RxBlock | null;
      parts.push(blk ? blk.own(b, skip) : skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    if (n > 0) this.hooks.credit(n);
  }

  /** @internal Take the first queued view for good (not credited). */
  shiftOwned(): Buffer {
    const b = this.shiftView();
    const blk = shifted.block;
    shifted.block = null;
    return blk ? blk.own(b) : b;
  }

  /** Drop every queued view (releasing its block). */
  private releaseQueued(): void {
    const p = this.pieces;
    this.pieces = null;
    this.skip = 0;
    if (p !== null) for (let i = 1; i < p.length; i += 2) (p[i] as RxBlock | null)?.release();
  }

  /**
   * Collect the whole body. Rejects with `BEEP_ERR_MESSAGE_TOO_LARGE` (and
   * discards the rest) past `maxBytes` (default: the session's maxMessageSize).
   */
  bytes(maxBytes = this.hooks.maxMessageSize): Promise<Buffer> {
    if (this.adapter !== null) return this.adapter.collect(maxBytes);
    // Fast path: the whole body is here — no async machinery.
    const b = this.takeBytes(maxBytes);
    return b !== null ? Promise.resolve(b) : this.collect(maxBytes);
  }

  /**
   * The whole body at once, without a promise, when the whole message has
   * arrived: a small message usually has by the time the profile sees it.
   * Returns `null`, taking nothing, while octets are still to come, once the
   * body is being read some other way (a stream, iteration, {@link bytes}),
   * after the message failed or was discarded, or when the body is larger
   * than `maxBytes` (default: the session's maxMessageSize; {@link bytes}
   * then rejects with `BEEP_ERR_MESSAGE_TOO_LARGE`). Otherwise the body is
   * taken (its octets reopen the window) as {@link bytes} would resolve it.
   *
   * @example
   * ```ts
   * onMessage(msg, res) {
   *   const body = msg.takeBytes();
   *   if (body !== null) return res.send(body); // no promise made
   *   return msg.bytes().then((b) => res.send(b));
   * }
   * ```
   */
  takeBytes(maxBytes = this.hooks.maxMessageSize): Buffer | null {
    if (!this.complete || !this.headReady || this.failure !== undefined || this.dumping || this.taken || this.adapter !== null) return null;
    const p = this.pieces;
    if (p === null) {
      this.flags |= TAKEN;
      return EMPTY_BODY;
    }
    const n = this.queuedLength();
    if (n > maxBytes) return null;
    let b: Buffer;
    if (p.length === 2) {
      const view = p[0] as Buffer;
      const blk = p[1] as RxBlock | null;
      const skip = this.skip;
      this.pieces = null;
      this.skip = 0;
      b = blk ? blk.own(view, skip) : skip > 0 ? view.subarray(skip) : view;
      // The body and the header octets in front of it (see skip): one credit.
      if (n + skip > 0) this.hooks.credit(n + skip);
    } else {
      const parts: Buffer[] = [];
      this.takeQueued(parts);
      b = Buffer.concat(parts, n);
    }
    this.flags |= TAKEN;
    return b;
  }

  private async collect(maxBytes: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.hasQueued) {
        n += this.queuedLength();
        if (n > maxBytes) {
          this.discard();
          throw new BeepError(ErrorCodes.MESSAGE_TOO_LARGE, `message body exceeds ${maxBytes} octets`);
        }
        this.takeQueued(parts);
      }
      if ((this.complete && this.headReady) || this.dumping) break;
      await this.wait();
    }
    this.flags |= TAKEN;
    if (parts.length === 1) return parts[0] as Buffer;
    return Buffer.concat(parts, n);
  }

  /** Collect the whole body as UTF-8 text. */
  async text(maxBytes?: number): Promise<string> {
    return (await this.bytes(maxBytes)).toString('utf8');
  }

  /** Throw the body away (reopening the window) and wait for its end. */
  async dump(): Promise<void> {
    if (this.adapter !== null) return this.adapter.dump();
    if (this.taken) return;
    this.discard();
    while (!this.complete) {
      if (this.failure) throw this.failure;
      await this.wait();
    }
    this.flags |= TAKEN;
  }

  /**
   * The body as views into the session's receive memory, without a copy and
   * without a `Readable`: each view is valid only until the next step of the
   * iteration (or its end), and its octets reopen the window only then. Copy
   * a view to keep it (`Buffer.from(view)`). A bulk receiver that reads this
   * way allocates nothing per socket read: the memory is reused (see the
   * README, "Receiving without copies").
   *
   * Use it instead of, not together with, the other ways of reading the body.
   * Leaving the loop early (`break`, `return`, a throw) throws the rest of
   * the body away, reopening the window.
   */
  async *views(): AsyncGenerator<Buffer, void, undefined> {
    if (this.adapter !== null) throw new BeepError(ErrorCodes.INVALID_STATE, 'the body is already being read as a stream');
    let held: RxBlock | null = null;
    let heldLength = 0;
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        if (this.hasQueued) {
          const b = this.shiftView();
          held = shifted.block;
          shifted.block = null;
          heldLength = b.length;
          yield b;
          // The application is done with it: reuse the memory, reopen the window.
          held?.release();
          held = null;
          this.hooks.credit(heldLength);
          heldLength = 0;
          continue;
        }
        if ((this.complete && this.headReady) || this.dumping) break;
        await this.wait();
      }
      this.flags |= TAKEN;
    } finally {
      held?.release();
      if (heldLength > 0) this.hooks.credit(heldLength);
      // Left early (break, return, a throw in the loop body): the rest is thrown away,
      // as it is when a `Readable` is left early; kept, it held the channel's window.
      if (!this.taken) this.abandonRest();
    }
  }

  /** The application stopped reading before the end: discard what is queued and what is still to come. */
  private abandonRest(): void {
    if (this.failure === undefined && !this.dumping) this.discard();
  }

  /**
   * The body's chunks as they arrive, each credited to the window as it is
   * taken. Without a stream, no `Readable` is built. Leaving the loop early
   * throws the rest of the body away (as leaving a `Readable`'s loop does).
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.adapter !== null) {
      yield* this.adapter;
      return;
    }
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        if (this.hasQueued) {
          const b = this.shiftOwned();
          this.hooks.credit(b.length);
          yield b;
          continue;
        }
        if (this.complete && this.headReady) break;
        if (this.dumping) break;
        await this.wait();
      }
      this.flags |= TAKEN;
    } finally {
      // Left early: the rest is thrown away (see views()).
      if (!this.taken) this.abandonRest();
    }
  }

  /**
   * The body as a `Readable` (made on first use, then the same one). Its
   * octets reopen the window only as they leave its buffer.
   */
  stream(): Readable {
    if (this.adapter === null) this.adapter = new MessageStream(this, this.taken);
    return this.adapter;
  }

  // Readable methods, acting on the body's stream (see stream()).
  /** `Readable#on` on {@link stream}. */
  on(event: string | symbol, listener: Listener): this {
    this.stream().on(event, listener);
    return this;
  }
  /** `Readable#once` on {@link stream}. */
  once(event: string | symbol, listener: Listener): this {
    this.stream().once(event, listener);
    return this;
  }
  /** `Readable#off` on {@link stream}. */
  off(event: string | symbol, listener: Listener): this {
    this.adapter?.off(event, listener);
    return this;
  }
  /** `Readable#addListener` on {@link stream}. */
  addListener(event: string | symbol, listener: Listener): this {
    return this.on(event, listener);
  }
  /** `Readable#removeListener` on {@link stream}. */
  removeListener(event: string | symbol, listener: Listener): this {
    return this.off(event, listener);
  }
  /** `Readable#listenerCount` on {@link stream} (0 before it exists). */
  listenerCount(event: string | symbol): number {
    return this.adapter?.listenerCount(event) ?? 0;
  }
  /** `Readable#pipe` on {@link stream}. */
  pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    return this.stream().pipe(destination, options);
  }
  /** `Readable#unpipe` on {@link stream}. */
  unpipe(destination?: NodeJS.WritableStream): this {
    this.adapter?.unpipe(destination);
    return this;
  }
  /** `Readable#read` on {@link stream}. */
  read(size?: number): Buffer | null {
    return this.stream().read(size) as Buffer | null;
  }
  /** `Readable#pause` on {@link stream}. */
  pause(): this {
    this.stream().pause();
    return this;
  }
  /** `Readable#resume` on {@link stream}. */
  resume(): this {
    this.stream().resume();
    return this;
  }
  /** `Readable#isPaused` on {@link stream}. */
  isPaused(): boolean {
    return this.stream().isPaused();
  }
  /** `Readable#setEncoding` on {@link stream}. */
  setEncoding(encoding: BufferEncoding): this {
    this.stream().setEncoding(encoding);
    return this;
  }
  /** `Readable#destroy` on {@link stream}: the rest of the body is thrown away. */
  destroy(error?: Error): this {
    this.stream().destroy(error);
    return this;
  }
  /** Whether the stream can still be read (`Readable#readable`). */
  get readable(): boolean {
    return this.adapter !== null ? this.adapter.readable : !this.taken && this.failure === undefined;
  }
  /** The whole body was taken: the stream's `'end'` was emitted, or bytes()/iteration/dump() finished. */
  get readableEnded(): boolean {
    return this.adapter !== null ? this.adapter.readableEnded : this.taken;
  }
  /** Octets in the stream's buffer (`Readable#readableLength`). */
  get readableLength(): number {
    return this.adapter?.readableLength ?? 0;
  }
  /** The stream was destroyed, or the message failed. */
  get destroyed(): boolean {
    return this.adapter !== null ? this.adapter.destroyed : this.failure !== undefined;
  }
}

/**
 * The `Readable` of one message, made on first use (see {@link IncomingMessage.stream}).
 * Octets move from the message's queue into the stream as it asks for them
 * and are credited to the window only when they leave its buffer.
 */
class MessageStream extends Readable {
  private readonly msg: IncomingMessage;
  private wantMore = false;
  private pushedEnd = false;
  /** Octets handed to the stream's own buffer and not yet read by the application (not yet credited). */
  private unread = 0;

  constructor(msg: IncomingMessage, taken: boolean) {
    super({ highWaterMark: 64 * 1024 });
    this.msg = msg;
    if (msg.failure) this.failed(msg.failure);
    else if (taken) {
      this.pushedEnd = true;
      this.push(null);
    }
  }

  /** More octets (or the end) reached the message. */
  fed(): void {
    if (this.wantMore || this.msg.dumping) this.drainQueue();
  }

  /**
   * Destroyed before its end was read (the application's `destroy()`, a
   * failed `pipeline`): the rest of the body is thrown away — the octets left
   * in the stream's buffer and the queue reopen the window, later frames are
   * credited as they arrive. Without this they held the channel's window
   * shut, and with it every later reply of the channel (RFC 3080 §2.6.1:
   * replies go in order).
   */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const msg = this.msg;
    if (msg.failure === undefined && !this.readableEnded) {
      const unread = this.unread;
      this.unread = 0;
      if (unread > 0) msg.hooks.credit(unread);
      if (!msg.dumping) msg.discard();
    }
    callback(err);
  }

  discarded(taken: boolean): void {
    if (this.destroyed) return;
    this.drainQueue();
    // Nothing to flow once the body was taken.
    if (!taken) this.resume();
  }

  failed(err: Error): void {
    if (this.destroyed) return;
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
      this.msg.hooks.credit(n);
    }
    return r;
  }

  override _read(): void {
    this.wantMore = true;
    this.drainQueue();
  }

  private drainQueue(): void {
    const msg = this.msg;
    if (msg.dumping) {
      if (msg.complete && !this.pushedEnd) {
        this.pushedEnd = true;
        this.push(null);
      }
      return;
    }
    let credited = 0;
    while (msg.hasQueued && this.wantMore) {
      const b = msg.shiftOwned();
      const before = this.readableLength;
      this.wantMore = this.push(b);
      // Emitted to a 'data' listener at once: consumed now. Otherwise it waits
      // in the stream's buffer and is credited when the application reads it.
      if (this.readableLength - before >= b.length) this.unread += b.length;
      else credited += b.length;
    }
    if (credited > 0) msg.hooks.credit(credited);
    if (!msg.hasQueued && msg.complete && msg.headReady && !this.pushedEnd) {
      this.pushedEnd = true;
      this.push(null);
    }
  }

  async collect(maxBytes: number): Promise<Buffer> {
    if (this.msg.failure) throw this.msg.failure;
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of this) {
        n += (chunk as Buffer).length;
        if (n > maxBytes) {
          this.msg.discard();
          throw new BeepError(ErrorCodes.MESSAGE_TOO_LARGE, `message body exceeds ${maxBytes} octets`);
        }
        parts.push(chunk as Buffer);
      }
    } catch (err) {
      throw this.msg.failure ?? err;
    }
    if (this.msg.failure) throw this.msg.failure;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, n);
  }

  async dump(): Promise<void> {
    if (this.readableEnded || this.destroyed) return;
    const done = new Promise<void>((resolve, reject) => {
      this.once('end', resolve);
      this.once('error', reject);
      this.once('close', resolve);
    });
    this.msg.discard();
    await done;
  }
}

// The outbound side lives in outmessage.ts; its names are kept here for the modules that import them from this one.
export { toBytes, isImmediateBody, bodyChunks } from './outmessage.js';
/** @internal */
export { OutboundMessage } from './outmessage.js';
