/**
 * @internal
 * The dispatch part of a session core: hands the peer's MSGs to the channel's
 * profile one at a time (RFC 3080 §2.6.1: serial per channel), runs the
 * handlers of one read together at its end (others in one microtask),
 * replies for a handler that failed,
 * and retires a MSG once it is wholly received and its reply is out. It owns
 * the handler queue and the count of MSGs awaiting replies on the session.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../errors.js';
import type { Channel, InboundRequest } from './channel.js';
import * as outbound from './outbound.js';
import { Responder, type ResponderHost } from './responder.js';
import { handleMgmtMessage } from './management.js';
import { publishLimit } from './diagnostics.js';
import type { SessionCore } from './core.js';
import type { Scheduler } from './scheduler.js';

const RESOLVED = Promise.resolve();

/** @internal Work queued with the handlers of a read (see {@link Dispatcher.defer}); it must not throw. */
export interface Deferred {
  runDeferred(): void;
}

/** @internal The dispatch part of a {@link SessionCore} (see the module comment). */
export class Dispatcher {
  private readonly core: SessionCore;
  private readonly scheduler: Scheduler;
  /** MSGs awaiting our replies on all channels (bounded by `maxSessionInbound`). */
  private inbound = 0;

  constructor(core: SessionCore, scheduler: Scheduler) {
    this.core = core;
    this.scheduler = scheduler;
  }

  /** MSGs awaiting our replies on all channels. */
  get inboundTotal(): number {
    return this.inbound;
  }

  /** A new MSG began arriving on `ch`: it waits in line for the profile. */
  admit(ch: Channel, im: InboundRequest): void {
    ch.inbound.set(im.msg.msgno, im);
    this.inbound++;
    ch.inQueue.push(im);
  }

  /** `ch` closed: its MSGs no longer wait (the caller fails them). */
  forget(ch: Channel): void {
    this.inbound -= ch.inbound.size;
  }

  /** Hand the next MSG of `ch` to its profile, if none is being processed (RFC 3080 §2.6.1). */
  dispatch(ch: Channel): void {
    // A channel whose start reply is still being read waits for its profile.
    if (ch.active !== null || this.core.state === 'closed' || ch.state === 'starting') return;
    const im = ch.inQueue[0];
    if (!im || !im.msg.headReady) return;
    // Issue 17: while replies on the channel wait for the peer's window, the
    // next MSG waits too (resumed from pull() once they are sent): a peer
    // that does not read cannot make the profile build reply after reply.
    // Not while we await replies on the channel ourselves: the peer's replies
    // may wait for our window, which only this MSG's handling reopens; two
    // peers holding each other's next MSG would deadlock (found by the
    // two-core model test, seed -1598136149).
    if (ch.number !== 0 && ch.outstanding.size === 0 && ch.outQueue.length > 0 && this.scheduler.owedOf(ch) > 0) {
      this.scheduler.recheckCredit(ch);
      return;
    }
    ch.inQueue.shift();
    ch.active = im;
    const responder = new Responder((ch.responderHost ??= this.responderHost(ch)), im);
    if (ch.number === 0) {
      handleMgmtMessage(this.core, im.msg, responder);
      return;
    }
    // Handlers run after the frames of this read are decoded, all at once:
    // at the end of the read (see endOfRead), else in one microtask (not one per MSG).
    this.enqueue(ch, im, responder);
  }

  /**
   * Run `task` with the handlers of this read (at its end), or in the run
   * under way, or else in one microtask: a reply callback of
   * `Channel.exchange()` runs here, after every frame of its read was decoded
   * and before the read's output is flushed (requests it makes go out in the
   * same write, without a flush of their own).
   */
  defer(task: Deferred): void {
    this.enqueue(null, null, task);
  }

  /** Queue one entry (three slots) for {@link runHandlers}; the first of a batch schedules the run unless a read will. */
  private enqueue(a: unknown, b: unknown, c: unknown): void {
    const q = this.handlerQueue;
    const n = this.handlersQueued;
    q[n] = a;
    q[n + 1] = b;
    q[n + 2] = c;
    this.handlersQueued = n + 3;
    if (n === 0 && !this.reading) void RESOLVED.then(this.runHandlers);
  }

  /** True while a read is being decoded: MSGs it dispatches wait for {@link endOfRead}. */
  reading = false;

  /**
   * The read ended in an error (the session is being terminated): what it
   * queued runs in a microtask — handlers of MSGs find the session closed
   * and do nothing; deferred tasks (reply callbacks) still run, once.
   */
  readFailed(): void {
    this.reading = false;
    if (this.handlersQueued > 0 && !this.running) void RESOLVED.then(this.runHandlers);
  }

  /**
   * The read's frames are all decoded: run the handlers of the MSGs it
   * dispatched now (no microtask), unless handlers are running already
   * (a read fed from inside one): that run takes these too.
   */
  endOfRead(): void {
    this.reading = false;
    if (this.handlersQueued > 0 && !this.running) this.runHandlers();
  }

  /** The host of every Responder of `ch`: its token is the MSG replied to. */
  private responderHost(ch: Channel): ResponderHost<InboundRequest> {
    return {
      send: (im, type, ansno, body, headers, wait) => outbound.sendReply(this.core, ch, im, type, ansno, body, headers, wait),
      stream: (im, type, ansno, headers) => outbound.replyWritable(this.core, ch, im, type, ansno, headers),
      finished: (im) => this.replyQueued(ch, im),
    };
  }

  /**
   * MSGs dispatched and waiting for their handler: (channel, request,
   * responder) triples in the first {@link handlersQueued} slots (the array
   * keeps its size: no allocation per MSG); a deferred task is a triple
   * (null, null, task).
   */
  private readonly handlerQueue: unknown[] = [];
  private handlersQueued = 0;
  /** True while the queued handlers run (output they queue may wait for {@link afterRun}). */
  running = false;
  /**
   * Set by the transport glue: called once the queued handlers have run, so
   * what they replied goes out in one write without a microtask of its own.
   */
  afterRun: (() => void) | null = null;
  private readonly runHandlers = (): void => {
    const q = this.handlerQueue;
    this.running = true;
    try {
      // Handlers may dispatch more MSGs (a synchronous reply frees the channel): those are queued after these.
      for (let i = 0; i < this.handlersQueued; i += 3) {
        const ch = q[i] as Channel | null;
        const im = q[i + 1] as InboundRequest;
        const responder = q[i + 2];
        q[i] = q[i + 1] = q[i + 2] = undefined;
        if (ch === null) (responder as Deferred).runDeferred();
        else this.runHandler(ch, im, responder as Responder);
      }
    } finally {
      this.handlersQueued = 0;
      this.running = false;
    }
    this.afterRun?.();
  };

  private runHandler(ch: Channel, im: InboundRequest, responder: Responder): void {
    // The session or channel may have ended since: its MSGs have failed already.
    if (this.core.state === 'closed' || ch.state === 'closed') return;
    const handler = ch.handler?.onMessage;
    if (!handler) {
      // RFC 3080 §2.7: every profile replies to unexpected MSGs with an error.
      void responder.error(500, `profile ${ch.profile || '(none)'} accepts no messages here`).catch(() => undefined);
      return;
    }
    let r: unknown;
    try {
      r = handler.call(ch.handler, im.msg, responder, ch);
    } catch (err) {
      this.handlerFailed(responder, err);
      return;
    }
    if (r && typeof (r as Promise<void>).then === 'function') {
      // An async handler must have begun its reply by the time it settles;
      // otherwise the channel would stall behind this MSG forever.
      (r as Promise<void>).then(
        () => {
          if (!responder.replied && !responder.answering) {
            this.handlerFailed(responder, new BeepError(ErrorCodes.INVALID_STATE, `onMessage of ${ch.profile} settled without replying`));
          }
        },
        (err: unknown) => this.handlerFailed(responder, err),
      );
    }
  }

  private handlerFailed(res: Responder, err: unknown): void {
    this.core.emit('handlerError', err);
    // Reply for the handler if it had not, without revealing its error text.
    // After some ANS an ERR is not allowed (error() throws): end with NUL instead.
    if (!res.replied) {
      // A body past maxMessageSize is the peer's doing: say so (554), not 451.
      const tooLarge = err instanceof BeepError && err.code === ErrorCodes.MESSAGE_TOO_LARGE;
      if (tooLarge) publishLimit({ sessionId: this.core.id, limit: 'maxMessageSize', action: 'refused', code: 554, detail: err.message });
      try {
        void res.error(tooLarge ? 554 : 451, tooLarge ? err.message : 'local error in processing').catch(() => undefined);
      } catch {
        void res.end().catch(() => undefined);
      }
    }
  }

  private replyQueued(ch: Channel, im: InboundRequest): void {
    if (im.replyQueued) return;
    im.replyQueued = true;
    if (ch.active === im) ch.active = null;
    this.dispatch(ch);
  }

  /** The reply to `im` is out: retire the MSG once it is also wholly received. */
  replyDone(ch: Channel, im: InboundRequest): void {
    im.replyDone = true;
    // Whatever the profile did not read of the MSG is dropped, reopening the window.
    im.msg.discard();
    if (im.received) this.retireInbound(ch, im);
  }

  retireInbound(ch: Channel, im: InboundRequest): void {
    if (ch.inbound.delete(im.msg.msgno)) this.inbound--;
    // Issue 17: the waiting message no longer holds memory: credit may reopen.
    if (ch.flowState.owed > 0) this.scheduler.recheckCredit(ch);
    this.core.lifecycle.checkQuiescent(ch);
  }
}
