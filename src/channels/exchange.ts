/**
 * One-to-one exchanges whose reply is handed to a callback, whole
 * ({@link Channel.exchange}), and the ERR-to-error mapping every way of
 * requesting shares.
 *
 * An exchange makes one object per request: it is the pending-request record
 * the session keeps, the sink the reply is routed to and the task that calls
 * back. No promise is made for a reply that is all here by the end of the
 * socket read that completed it (a small one is); the callback runs then,
 * with the read's other handlers, and what it sends goes out in the read's
 * one write.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { BeepError, BeepReplyError, ErrorCodes, type ErrorCode } from '../errors.js';
import { mediaType, BEEP_XML } from '../framing/index.js';
import { parseMgmt } from './mgmt.js';
import type { IncomingMessage, OutboundMessage } from './message.js';
import type { Channel, PendingRequest, ReplySink } from './channel.js';
import type { Deferred } from './dispatch.js';

/**
 * Receives the outcome of {@link Channel.exchange}, exactly once.
 *
 * - A positive reply (RPY): `err` is `null`, `body` is its whole body (yours
 *   to keep), `reply` the message (its `contentType` and `headers`; the
 *   body was taken already).
 * - A negative reply (ERR): `err` is a {@link BeepReplyError}
 *   (`BEEP_ERR_REPLY`, with the peer's reply code, diagnostic and body),
 *   `reply` the ERR message.
 * - Any other outcome: `err` is a {@link BeepError} with a stable code and
 *   `body`, `reply` are undefined: `BEEP_ERR_SESSION_CLOSED` or the error
 *   that terminated the session (e.g. `BEEP_ERR_PROTOCOL`,
 *   `BEEP_ERR_TRANSPORT`), `BEEP_ERR_CHANNEL_CLOSED`, `BEEP_ERR_ABORTED`
 *   (the request's `signal`, before the reply began to arrive), `BEEP_ERR_MESSAGE_TOO_LARGE` (a reply larger
 *   than the session's `maxMessageSize`), `BEEP_ERR_BAD_REPLY` (the peer
 *   answered with ANS/NUL), `BEEP_ERR_INVALID_STATE` (the channel was not
 *   open), `BEEP_ERR_LIMIT` (`maxOutstanding`), `BEEP_ERR_INVALID_ARGUMENT`
 *   (bad entity headers in the options).
 *
 * The callback is never called before `exchange()` returns. What it throws is
 * emitted as the session's `handlerError` event.
 */
export type ReplyCallback = (err: BeepError | null, body?: Buffer, reply?: IncomingMessage) => void;

/**
 * Turn an ERR message whose whole `body` is in hand into a
 * {@link BeepReplyError}: an `application/beep+xml` `<error>` gives the reply
 * code and diagnostic; any other body becomes the diagnostic with reply code 0.
 */
export function replyErrorOf(msg: IncomingMessage, body: Buffer, code: ErrorCode = ErrorCodes.REPLY_ERROR): BeepReplyError {
  // Liberal: beepcore-java sends channel-0 ERRs with no Content-Type at all; try <error> then too.
  if (mediaType(msg.contentType) === BEEP_XML || msg.headers['content-type'] === undefined) {
    try {
      const el = parseMgmt(body);
      if (el.kind === 'error') {
        return new BeepReplyError(code, el.code, el.diagnostic, el.lang === undefined ? { body } : { lang: el.lang, body });
      }
    } catch {
      /* not an <error>: fall through */
    }
  }
  // Not an <error>: reply code 0; the diagnostic is the start of the body, the whole body is `body`.
  return new BeepReplyError(code, 0, body.toString('utf8').slice(0, 1024), { body });
}

/** What an {@link Exchange} has learnt: nothing yet, an outcome to call back with, or called back. */
const PENDING = 0;
const DUE = 1;
const DONE = 2;

/**
 * @internal What a request that expects one RPY gets when the peer answers
 * with ANS (the answers thrown away) or NUL: `BEEP_ERR_BAD_REPLY` (shared by
 * `request()` and `exchange()`).
 */
export function unexpectedAnswer(msg: IncomingMessage | null): BeepError {
  if (msg === null) return new BeepError(ErrorCodes.BAD_REPLY, 'expected RPY, got NUL; use requestAnswers()', { origin: 'remote' });
  msg.dump().catch(() => undefined); // rejects if the session fails meanwhile: nothing to do
  return new BeepError(ErrorCodes.BAD_REPLY, 'expected RPY, got a one-to-many reply (ANS); use requestAnswers()', { origin: 'remote' });
}

/** @internal One {@link Channel.exchange}: pending-request record, reply sink and deferred callback in one object. */
export class Exchange implements PendingRequest, ReplySink, Deferred {
  // PendingRequest (see channel.ts; kept by the session until the reply is complete).
  msgno = -1;
  out: OutboundMessage | null = null;
  sink: ReplySink = this;
  replyKind: 'RPY' | 'ERR' | 'ANS' | undefined = undefined;
  reply: IncomingMessage | null = null;
  answers: Map<number, IncomingMessage> | null = null;
  abandoned = false;

  private readonly ch: Channel;
  private cb: ReplyCallback | null;
  private state = PENDING;
  /** The outcome: the RPY or ERR to hand over, or the error (a local failure, ANS/NUL). */
  private outcome: IncomingMessage | BeepError | null = null;

  constructor(ch: Channel, cb: ReplyCallback) {
    this.ch = ch;
    this.cb = cb;
  }

  /** Record the outcome (the first one counts) and call back with the read's handlers. */
  private due(outcome: IncomingMessage | BeepError): void {
    if (this.state !== PENDING) return;
    this.state = DUE;
    this.outcome = outcome;
    this.ch.core.dispatcher.defer(this);
  }

  rpy(msg: IncomingMessage): void {
    this.due(msg);
  }

  err(msg: IncomingMessage): void {
    this.due(msg);
  }

  ans(msg: IncomingMessage): void {
    this.due(unexpectedAnswer(msg));
  }

  nul(): void {
    this.due(unexpectedAnswer(null));
  }

  fail(err: Error): void {
    const e = err instanceof BeepError ? err : new BeepError(ErrorCodes.CHANNEL_CLOSED, err.message, { cause: err });
    // A long reply being collected (see runDeferred) when the request is aborted or
    // the session ends: the failure is the outcome, not what was collected so far.
    if (this.state === DUE && this.outcome === null) this.outcome = e;
    else this.due(e);
  }

  /** Called by the dispatcher at the end of the read (or in a microtask): hand the outcome over. */
  runDeferred(): void {
    const msg = this.outcome;
    this.outcome = null;
    if (msg === null) return; // (called back already)
    if (msg instanceof BeepError) return this.finish(msg);
    // A small reply is all here by now: taken without a promise.
    const body = msg.takeBytes();
    if (body !== null) return this.deliver(msg, body);
    // Still arriving (a long reply), or larger than maxMessageSize: collected the slow way.
    msg.bytes().then(
      (b) => {
        const failed = this.outcome;
        if (failed instanceof BeepError) this.finish(failed);
        else this.deliver(msg, b);
      },
      (e: unknown) => this.finish(e instanceof BeepError ? e : new BeepError(ErrorCodes.CHANNEL_CLOSED, String(e), { cause: e })),
    );
  }

  private deliver(msg: IncomingMessage, body: Buffer): void {
    if (msg.type === 'RPY') this.finish(null, body, msg);
    else this.finish(replyErrorOf(msg, body), undefined, msg);
  }

  private finish(err: BeepError | null, body?: Buffer, reply?: IncomingMessage): void {
    const cb = this.cb;
    if (this.state === DONE || cb === null) return;
    this.state = DONE;
    this.cb = null;
    try {
      if (reply === undefined) cb(err);
      else cb(err, body, reply);
    } catch (e) {
      this.ch.core.emit('handlerError', e);
    }
  }
}
