/**
 * A channel: one profile instance bound to a channel number (RFC 3080 §2.3).
 *
 * Public methods send MSGs and close the channel; the fields marked internal
 * are the per-channel protocol state kept by the session core.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import type { Buffer } from 'node:buffer';
import { BeepError, ErrorCodes, type BeepReplyError } from '../errors.js';
import type { EntityHeaders } from '../framing/index.js';
import { Exchange, replyErrorOf, unexpectedAnswer, type ReplyCallback } from './exchange.js';
import type { BodyInit, IncomingHooks, IncomingMessage, OutboundMessage } from './message.js';
import { SendWindow, type RecvWindow } from './window.js';
import type { ChannelFlow, ChannelFlowStats } from './flow.js';
import type { ChannelProfile } from './types.js';
import type { SessionCore } from './core.js';
import type { ResponderHost } from './responder.js';
import { MsgnoMap } from './msgmap.js';
import { handleOf, tuningFor, type SessionHandle, type TuningContext } from './handle.js';

/** Life cycle of a channel. */
export type ChannelState = 'starting' | 'open' | 'closing' | 'closed';

export type { ReplyCallback } from './exchange.js';

/** Options of a request. */
export interface RequestOptions extends EntityHeaders {
  /** Abort waiting for the reply (the reply, when it comes, is discarded). */
  signal?: AbortSignal;
  /**
   * Tuning: send nothing more on the session once this MSG is out, until its
   * reply (RFC 3080 §3.1.3.1). After a negative reply call
   * `session.core.releaseOutput()`; after a positive one, reset the transport.
   */
  hold?: boolean;
  /**
   * Told when the session no longer references the body's octets, so their
   * memory may be reused: called with the count of body octets released so
   * far (from the body's first octet; entity headers not counted), which
   * only grows. An octet is released once the transport write that carried
   * its frame has completed (Node's write callback: the kernel took it, or
   * TLS encrypted it), or once it is dropped unsent (the message was cut
   * short: an abort, a peer's ERR, the session ending). Every octet the core
   * took from the body is released at the latest when the transport closes;
   * a body never taken (the request refused at once, the session closed) is
   * never reported. Octets, not chunks: the core may split or join chunks.
   * Calls come from socket write callbacks, batched (about one per write of
   * the session, not one per chunk): keep them short. A throw is reported as
   * the session's `handlerError`. Not carried on the wire.
   */
  onReleased?: (octets: number) => void;
}

/** @internal How a reply to one of our MSGs is consumed. */
export interface ReplySink {
  /** The RPY arrived (headers parsed; body streaming). */
  rpy(msg: IncomingMessage): void;
  /** The ERR arrived (headers parsed; body streaming). */
  err(msg: IncomingMessage): void;
  /** An ANS arrived (headers parsed; body streaming). */
  ans(msg: IncomingMessage): void;
  /** NUL arrived: the one-to-many reply is complete. */
  nul(): void;
  /** The request failed locally (session/channel gone, aborted). */
  fail(err: Error): void;
}

/** @internal One of our MSGs awaiting its complete reply. */
export interface PendingRequest {
  msgno: number;
  /** Our MSG; null once a whole-body MSG has been sent (its message is reused), and for the greeting's. */
  out: OutboundMessage | null;
  sink: ReplySink;
  /** Keyword of the reply frames received so far. */
  replyKind: 'RPY' | 'ERR' | 'ANS' | undefined;
  /** The RPY/ERR being received. */
  reply: IncomingMessage | null;
  /** ANS messages in progress, by ansno. */
  /** Answers being received, by ansno (made at the first ANS). */
  answers: Map<number, IncomingMessage> | null;
  /** The caller gave up: discard whatever arrives. */
  abandoned: boolean;
  /** Called when the reply's final RPY or ERR frame has arrived (before its body is read). */
  onComplete?: (type: 'RPY' | 'ERR') => void;
}

/** @internal One MSG received from the peer, from its first frame until its reply is sent. */
export interface InboundRequest {
  readonly msg: IncomingMessage;
  /** The final MSG frame has arrived. */
  received: boolean;
  /** The reply's final frame has been sent. */
  replyDone: boolean;
  /** The reply has been fully queued (the next MSG may be processed). */
  replyQueued: boolean;
  /** A reply was sent before the MSG was complete (RFC 3080 §2.6.3): drop the rest. */
  preempted: boolean;
}

/**
 * Turn an ERR message into a {@link BeepReplyError}: an `application/beep+xml`
 * `<error>` gives the reply code and diagnostic; any other body becomes the
 * diagnostic with reply code 0.
 */
export async function replyErrorFrom(msg: IncomingMessage, code = ErrorCodes.REPLY_ERROR as (typeof ErrorCodes)[keyof typeof ErrorCodes]): Promise<BeepReplyError> {
  return replyErrorOf(msg, await msg.bytes(), code);
}

/** Events of a {@link Channel}. */
export interface ChannelEvents {
  /** The channel is gone; `error` set when it went because the session failed. */
  close: [error: Error | undefined];
}

/**
 * One channel of a session. Obtain it from `session.startChannel()`, or from
 * the session's `channel` event / a profile's `onOpen` when the peer started it.
 */
export class Channel extends EventEmitter<ChannelEvents> {
  /** Channel number. */
  readonly number: number;
  /** @internal The session state this channel belongs to (profiles use {@link session}). */
  readonly core: SessionCore;
  /** URI of the profile running on this channel. */
  profile = '';
  /** Piggybacked content the peer returned when the channel started, if any. */
  startContent: Buffer | undefined;
  /** Life-cycle state. */
  state: ChannelState;

  /**
   * Scheduling weight: frames this channel may send per round-robin turn
   * (1–64, default 1). Give bulk channels that should get a larger share more.
   */
  weight = 1;
  /** @internal The scheduler rings this channel is in (ring.ts). */
  ringBits = 0;
  /** @internal Frames left of this channel's current weighted turn (carried from one batch to the next). */
  turnLeft = 0;
  /** @internal When silly-window avoidance began holding this channel's output back (clock ms; -1: it is not). */
  swsHeldSince = -1;
  /** @internal A `'wakeup'` for the override timeout is pending. */
  swsWakeupPending = false;
  /** Control channel: served before every other channel but channel 0 (set from the profile's `control`). */
  control = false;
  /** @internal */ handler: ChannelProfile | undefined;
  /** @internal The receive-window policy of this channel (flow.ts). */ readonly flowState: ChannelFlow;
  /** @internal The receive window (mechanism), owned by {@link flowState}. */ readonly recv: RecvWindow;
  /** @internal */ readonly send = new SendWindow();
  /** @internal */ nextMsgno: number;
  /** @internal our MSGs awaiting a complete reply */ readonly outstanding = new MsgnoMap<PendingRequest>();
  /** @internal peer MSGs from first frame until reply sent */ readonly inbound = new MsgnoMap<InboundRequest>();
  /** @internal The hooks every incoming MSG of this channel gets (made at the first). */ msgHooks: IncomingHooks | undefined;
  /** @internal The hooks every incoming reply (RPY, ERR, ANS) of this channel gets (made at the first). */ replyHooks: IncomingHooks | undefined;
  /** @internal The host of every Responder of this channel (made at the first MSG). */ responderHost: ResponderHost<InboundRequest> | undefined;
  /** @internal peer MSGs waiting to be handed to the profile */ readonly inQueue: InboundRequest[] = [];
  /** @internal the MSG being processed */ active: InboundRequest | null = null;
  /** @internal outbound messages, FIFO */ readonly outQueue: OutboundMessage[] = [];
  /** @internal previous inbound frame was intermediate: its msgno and keyword */ lastMore: { msgno: number; kind: string } | null = null;
  /** @internal resolvers waiting for this channel to become quiescent */ quiesceWaiters: (() => void)[] = [];
  /** @internal set while our close request is in flight */ closePromise: Promise<void> | null = null;
  /**
   * @internal The positive reply to our start has fully arrived: the peer may
   * already use the channel, though its profile is bound only once the reply
   * is parsed (RFC 3080 §2.3.1.2).
   */
  startReplied = false;

  /** @internal */
  constructor(core: SessionCore, number: number, state: ChannelState, flow: ChannelFlow) {
    super();
    this.core = core;
    this.number = number;
    this.state = state;
    this.flowState = flow;
    this.recv = flow.window;
    this.nextMsgno = number === 0 ? 1 : 0;
  }

  /**
   * Flow-control state of this channel, for operators and tools: receive
   * window, octets buffered, the session's RTT estimate, the consumption rate,
   * how often the peer was held back by our window (`peerStalls`), SEQs sent,
   * and how often we ran out of the peer's window (`sendStalls`).
   */
  get flow(): ChannelFlowStats & { sendWindow: number; sendStalls: number } {
    return { ...this.flowState.snapshot(), sendWindow: this.send.available, sendStalls: this.sendStalls };
  }

  /** @internal Times this channel had octets to send and no window of the peer's left. */
  sendStalls = 0;

  /**
   * The session this channel belongs to: its `security` (TLS in place,
   * protocol, peer certificate), its `identity` (the SASL-authenticated
   * peer), its transport, and how to start channels or end it.
   */
  get session(): SessionHandle {
    return handleOf(this.core);
  }

  /** The tuning context, on a channel of a tuning profile (`tuning: true`) only. */
  get tuning(): TuningContext | undefined {
    return this.handler?.tuning === true ? tuningFor(this.core) : undefined;
  }

  /**
   * Send a MSG and wait for its RPY. An ERR rejects with
   * {@link BeepReplyError}; a one-to-many reply (ANS…NUL) rejects with
   * `BEEP_ERR_BAD_REPLY` (use {@link requestAnswers}). The reply's body streams:
   * read it, or call `bytes()`, `text()` or `dump()`, or the channel stalls.
   */
  request(body?: BodyInit, options: RequestOptions = NO_OPTIONS): Promise<IncomingMessage> {
    // No closure per request: the executor hands its resolvers over through module state.
    const p = new Promise<IncomingMessage>(takeResolvers);
    const sink = new RpySink(caught.resolve as (m: IncomingMessage) => void, caught.reject as (e: unknown) => void);
    caught.resolve = caught.reject = null;
    try {
      this.core.sendRequest(this, body, options, sink);
    } catch (err) {
      sink.fail(err as Error);
    }
    return p;
  }

  /**
   * Send a MSG and hand its reply, whole, to `onReply` — a request that
   * makes no promise. `onReply(err, body, reply)` is called exactly once:
   * with `err === null` and the RPY's whole body, or with a
   * {@link BeepReplyError} for an ERR, or with a `BeepError` of a stable code
   * when the request failed (session or channel gone, aborted, reply too
   * large, ANS/NUL instead of RPY; see {@link ReplyCallback}). It is never
   * called before `exchange()` returns.
   *
   * A reply that is all here by the end of the socket read that completed it
   * (a small one is) is handed over then, with the handlers of that read,
   * without a promise; what the callback sends goes out in that read's
   * write. A longer reply is collected first (up to the session's
   * `maxMessageSize`). Use {@link request} to stream a reply's body.
   *
   * `options.signal` aborts waiting for the reply (`BEEP_ERR_ABORTED`); once
   * the reply has begun to arrive it is collected and handed over, as
   * {@link request} resolves once it has begun. Bad arguments throw at once
   * (`BEEP_ERR_INVALID_ARGUMENT`); everything else is reported to `onReply`.
   *
   * @example
   * ```ts
   * ch.exchange('<get key="a"/>', (err, body) => {
   *   if (err) return console.error(err.code, err.message);
   *   console.log(body!.toString());
   * });
   * ```
   */
  exchange(body: BodyInit | undefined, onReply: ReplyCallback, options: RequestOptions = NO_OPTIONS): void {
    if (typeof onReply !== 'function') throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'exchange() needs a reply callback');
    const x = new Exchange(this, onReply);
    try {
      this.core.sendRequest(this, body, options, x, x);
    } catch (err) {
      x.fail(err instanceof BeepError ? err : new BeepError(ErrorCodes.INVALID_ARGUMENT, err instanceof Error ? err.message : String(err), { cause: err }));
    }
  }

  /**
   * Send a MSG and iterate its one-to-many reply: each ANS as an
   * {@link IncomingMessage}, ending at NUL. An ERR throws
   * {@link BeepReplyError}; a plain RPY is yielded as the only answer.
   *
   * Leaving the loop early (`break`, `return`, a throw) discards the rest of
   * the reply, the answer in hand included: read an answer's body inside the
   * loop body, not after it.
   */
  async *requestAnswers(body?: BodyInit, options: RequestOptions = {}): AsyncGenerator<IncomingMessage, void, undefined> {
    const queue: IncomingMessage[] = [];
    let done = false;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    const sink: ReplySink = {
      rpy: (msg) => {
        queue.push(msg);
        done = true;
        notify();
      },
      err: (msg) => {
        replyErrorFrom(msg).then(
          (e) => { failure = e; notify(); },
          (e: unknown) => { failure = e; notify(); },
        );
      },
      ans: (msg) => {
        queue.push(msg);
        notify();
      },
      nul: () => {
        done = true;
        notify();
      },
      fail: (err) => {
        failure = err;
        notify();
      },
    };
    const pending = this.core.sendRequest(this, body, options, sink);
    // The answer in the consumer's hands while it runs its loop body; still set in
    // `finally` when the consumer left the loop there.
    let inHand: IncomingMessage | null = null;
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          inHand = next;
          yield next;
          inHand = null;
          continue;
        }
        if (failure !== null) throw failure;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      // Consumer stopped early: discard the rest of the reply.
      if (!done && failure === null && pending) this.core.abandon(this, pending);
      // dump() rejects if the session fails first: never an unhandled rejection.
      // The answer in hand goes too, read or not: an unread one would hold the
      // channel's window shut for good (as an incomplete one is, by abandon()).
      inHand?.dump().catch(() => undefined);
      for (const m of queue) m.dump().catch(() => undefined);
    }
  }

  /**
   * Send a MSG whose body is written as a stream, paced by the peer's window.
   * `reply` settles as {@link request} does.
   */
  createRequest(options: RequestOptions = {}): { body: Writable; reply: Promise<IncomingMessage> } {
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    const reply = this.request(body, options);
    return { body, reply };
  }

  /**
   * Close the channel (RFC 3080 §2.3.1.3): waits until every MSG we sent has
   * been acknowledged, sends `<close>`, and resolves on `<ok>`. A refusal
   * rejects with {@link BeepReplyError} (`BEEP_ERR_CLOSE_REFUSED`) and the
   * channel stays open. Closing channel 0 releases the session.
   */
  close(code = 200, diagnostic?: string): Promise<void> {
    return this.core.closeChannel(this, code, diagnostic);
  }
}

const NO_OPTIONS: RequestOptions = Object.freeze({});

/** The resolvers of the promise {@link takeResolvers} last ran for (taken at once by its caller). */
const caught: { resolve: ((m: IncomingMessage) => void) | null; reject: ((e: unknown) => void) | null } = { resolve: null, reject: null };

/** A promise executor that is not a closure: it leaves the resolvers in {@link caught}. */
function takeResolvers(resolve: (m: IncomingMessage) => void, reject: (e: unknown) => void): void {
  caught.resolve = resolve;
  caught.reject = reject;
}

/** What {@link Channel.request} waits for: one RPY (an object, not a closure per outcome). */
class RpySink implements ReplySink {
  private settled = false;
  constructor(
    private readonly resolve: (m: IncomingMessage) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  private settle(err: unknown, msg?: IncomingMessage): void {
    if (this.settled) return;
    this.settled = true;
    if (msg) this.resolve(msg);
    else this.reject(err);
  }

  rpy(msg: IncomingMessage): void {
    this.settle(undefined, msg);
  }

  err(msg: IncomingMessage): void {
    replyErrorFrom(msg).then(
      (e) => this.settle(e),
      (e: unknown) => this.settle(e),
    );
  }

  ans(msg: IncomingMessage): void {
    this.settle(unexpectedAnswer(msg));
  }

  nul(): void {
    this.settle(unexpectedAnswer(null));
  }

  fail(err: Error): void {
    this.settle(err);
  }
}
