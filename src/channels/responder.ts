/**
 * The reply side of one received MSG: one RPY, one ERR, or zero or more ANS
 * followed by NUL (RFC 3080 §2.1.1).
 *
 * @module
 */
import type { Writable } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import { BEEP_XML, type EntityHeaders } from '../framing/index.js';
import { buildError } from './mgmt.js';
import type { BodyInit } from './message.js';

/** Options of a reply or an answer. */
export interface ReplyOptions extends EntityHeaders {
  /**
   * Tuning: once this reply is out, send nothing more on the session (the
   * profile then resets the transport, RFC 3080 §3).
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
   * a body never taken (the session closed before the reply was queued) is
   * never reported. Octets, not chunks: the core may split or join chunks.
   * Calls come from socket write callbacks, batched (about one per write of
   * the session, not one per chunk): keep them short. A throw is reported as
   * the session's `handlerError`. Not carried on the wire.
   */
  onReleased?: (octets: number) => void;
}

/**
 * @internal What a Responder needs from the session core: one host per
 * channel, told which MSG each call is for by the responder's `token`.
 */
export interface ResponderHost<T = unknown> {
  /** Queue a reply; with `wait` false no promise is made (null returned). */
  send(token: T, type: 'RPY' | 'ERR' | 'ANS' | 'NUL', ansno: number | undefined, body: BodyInit | undefined, headers: EntityHeaders | undefined, wait?: boolean): Promise<void> | null;
  stream(token: T, type: 'RPY' | 'ANS', ansno: number | undefined, headers: EntityHeaders | undefined): Writable;
  /** The whole reply has been queued (RPY/ERR ended or NUL queued): the next MSG may be processed. */
  finished(token: T): void;
}

type State = 'idle' | 'answering' | 'replying' | 'done';

/**
 * Reply to one MSG. Use exactly one of: {@link reply} / {@link send} /
 * {@link replyStream}, {@link error}, or any number of {@link answer} /
 * {@link answerStream} then {@link end}. The promise ones settle once the
 * reply (or answer) has been handed to the transport, so a handler that
 * awaits it is paced by the peer's window; {@link send} queues a reply and
 * makes no promise at all (the cheapest reply, for a handler that does not
 * wait for it).
 */
export class Responder {
  private state: State = 'idle';
  private nextAnsno = 0;
  private readonly host: ResponderHost;
  private readonly token: unknown;

  /** @internal */
  constructor(host: ResponderHost, token: unknown) {
    this.host = host;
    this.token = token;
  }

  /** True once a one-to-many reply has begun (an ANS sent, NUL not yet). */
  get answering(): boolean {
    return this.state === 'answering';
  }

  /** True once a complete reply has been queued (or is being streamed). */
  get replied(): boolean {
    return this.state === 'replying' || this.state === 'done';
  }

  private begin(next: 'replying' | 'answering'): void {
    if (this.state === 'done' || this.state === 'replying' || (this.state === 'answering' && next === 'replying') ) {
      throw new BeepError(ErrorCodes.INVALID_STATE, 'this MSG has already been replied to');
    }
    this.state = next;
  }

  /**
   * Queue through the host; if that throws (bad options: nothing was queued),
   * the responder is as it was before `begin`, so the handler may reply again.
   */
  private queue(prev: State, type: 'RPY' | 'ERR' | 'ANS', ansno: number | undefined, body: BodyInit, options: EntityHeaders | undefined, wait: boolean): Promise<void> | null {
    try {
      return this.host.send(this.token, type, ansno, body, options, wait);
    } catch (err) {
      this.state = prev;
      if (type === 'ANS') this.nextAnsno--;
      throw err;
    }
  }

  private finish(): void {
    if (this.state !== 'done') {
      this.state = 'done';
      this.host.finished(this.token);
    }
  }

  /**
   * Send a positive reply (RPY). The promise resolves once its final frame
   * has been handed to the transport and rejects if it never can be (the
   * session or channel ended first). Not waiting for that? {@link send}
   * queues the same reply without making a promise.
   */
  reply(body?: BodyInit, options?: ReplyOptions): Promise<void> {
    const prev = this.state;
    this.begin('replying');
    const p = this.queue(prev, 'RPY', undefined, body ?? '', options, true) as Promise<void>;
    return this.settleWith(p);
  }

  /**
   * Queue a positive reply (RPY), as {@link reply} does, but make no promise:
   * nothing tells when it is out. If the session or channel ends first the
   * reply is dropped (the session's `close` event says why). Bad options
   * (header injection) throw `BEEP_ERR_INVALID_ARGUMENT` at once, as they do
   * for {@link reply}; a second reply throws `BEEP_ERR_INVALID_STATE`.
   *
   * It is the cheapest way to answer a request: for a whole body (a string
   * or bytes) the library reuses the reply's internal record once it is
   * out. Returns nothing, so a handler may end with `return res.send(b)`.
   *
   * @example
   * ```ts
   * onMessage(msg, res) {
   *   res.send('pong');
   * }
   * ```
   */
  send(body?: BodyInit, options?: ReplyOptions): void {
    const prev = this.state;
    this.begin('replying');
    this.queue(prev, 'RPY', undefined, body ?? '', options, false);
    this.finish();
  }

  /**
   * Send a negative reply (ERR). With a number, the body is an
   * `application/beep+xml` `<error code='…'>` element, as channel 0 and the
   * tuning profiles use; pass a body and options to send anything else.
   */
  error(code: number, diagnostic?: string): Promise<void>;
  error(body: BodyInit, options?: ReplyOptions): Promise<void>;
  error(codeOrBody: number | BodyInit, arg?: string | ReplyOptions): Promise<void> {
    if (typeof codeOrBody === 'number' && (!Number.isInteger(codeOrBody) || codeOrBody < 100 || codeOrBody > 599)) {
      throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `reply code ${codeOrBody} is not a three-digit code`);
    }
    const prev = this.state;
    this.begin('replying');
    let p: Promise<void>;
    if (typeof codeOrBody === 'number') {
      p = this.queue(prev, 'ERR', undefined, buildError(codeOrBody, typeof arg === 'string' ? arg : undefined), { contentType: BEEP_XML }, true) as Promise<void>;
    } else {
      p = this.queue(prev, 'ERR', undefined, codeOrBody, typeof arg === 'object' ? arg : undefined, true) as Promise<void>;
    }
    return this.settleWith(p);
  }

  /** Send one answer (ANS) of a one-to-many reply. */
  answer(body?: BodyInit, options?: ReplyOptions): Promise<void> {
    const prev = this.state;
    this.begin('answering');
    return this.queue(prev, 'ANS', this.nextAnsno++, body ?? '', options, true) as Promise<void>;
  }

  /** Stream one answer (ANS); end the Writable to complete it. */
  answerStream(options?: ReplyOptions): Writable {
    this.begin('answering');
    return this.host.stream(this.token, 'ANS', this.nextAnsno++, options);
  }

  /**
   * End a one-to-many reply (NUL). Answers go out one after another in the
   * order they were begun, and NUL after the last of them.
   */
  end(): Promise<void> {
    if (this.state === 'replying' || this.state === 'done') {
      throw new BeepError(ErrorCodes.INVALID_STATE, 'this MSG has already been replied to');
    }
    const p = this.host.send(this.token, 'NUL', undefined, undefined, undefined, true) as Promise<void>;
    this.finish();
    return p;
  }

  /** Stream a positive reply (RPY); end the Writable to complete it. */
  replyStream(options?: ReplyOptions): Writable {
    this.begin('replying');
    const w = this.host.stream(this.token, 'RPY', undefined, options);
    this.finish();
    return w;
  }

  private settleWith(p: Promise<void>): Promise<void> {
    // The reply is in the channel's send queue, which is FIFO: the next MSG may
    // be handed to the profile now and its reply will still go out after this.
    this.finish();
    return p;
  }
}
