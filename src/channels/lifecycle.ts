/**
 * @internal
 * The channel life cycle of a session core: channel numbers, creation, binding
 * to a profile, removal (failing what was pending), quiescence and its
 * waiters, and the start-rate limit. It owns the channel table; each change of
 * a channel's state follows the table in `states.ts`. Channel management on
 * the wire (the `<start>`/`<close>` exchanges) is `management.ts`, which asks
 * this part for every change.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { BeepError, ErrorCodes } from '../errors.js';
import { Channel } from './channel.js';
import type { SessionFlow } from './flow.js';
import type { ChannelProfile, ResolvedLimits, Role } from './types.js';
import { diagnostics, type ChannelEvent } from './diagnostics.js';
import { nextChannelState } from './states.js';
import { RateBucket } from './guards.js';
import type { SessionCore } from './core.js';
import type { Scheduler } from './scheduler.js';
import type { Dispatcher } from './dispatch.js';

/** Channel numbers closed lately that are remembered (a SEQ or close for one may have crossed ours). */
const RECENT_CLOSED = 256;

/** Fail every exchange pending on `ch` (removed) with `err`, or a `BEEP_ERR_CHANNEL_CLOSED` built once. */
function failPending(ch: Channel, err: Error | undefined): void {
  let cached: Error | undefined = err;
  const failure = (): Error => (cached ??= new BeepError(ErrorCodes.CHANNEL_CLOSED, `channel ${ch.number} closed`));
  for (const pr of ch.outstanding.values()) {
    const e = failure();
    pr.sink.fail(e);
    pr.reply?.fail(e);
    if (pr.answers) for (const a of pr.answers.values()) a.fail(e);
  }
  ch.outstanding.clear();
  for (const im of ch.inbound.values()) if (!im.msg.complete) im.msg.fail(failure());
  ch.inbound.clear();
  for (const out of ch.outQueue) {
    out.truncate();
    out.onFail?.(failure());
  }
  ch.outQueue.length = 0;
}

/** @internal The channel life cycle of a {@link SessionCore} (see the module comment). */
export class Lifecycle {
  /** Open channels by number, channel 0 included. */
  readonly channels = new Map<number, Channel>();
  /** The last {@link RECENT_CLOSED} channel numbers closed, a ring (-1: empty slot). */
  private readonly recentlyClosed = new Int32Array(RECENT_CLOSED).fill(-1);
  private recentNext = 0;
  private nextChannel: number;
  private readonly core: SessionCore;
  private readonly role: Role;
  private readonly limits: ResolvedLimits;
  private readonly flow: SessionFlow;
  private readonly profiles: ReadonlyMap<string, ChannelProfile>;
  private readonly sessionId: number;
  private readonly scheduler: Scheduler;
  private readonly dispatcher: Dispatcher;
  private readonly startRate: RateBucket;

  constructor(core: SessionCore, profiles: ReadonlyMap<string, ChannelProfile>, scheduler: Scheduler, dispatcher: Dispatcher) {
    this.core = core;
    this.role = core.role;
    this.limits = core.limits;
    this.flow = core.flow;
    this.profiles = profiles;
    this.sessionId = core.id;
    this.scheduler = scheduler;
    this.dispatcher = dispatcher;
    this.startRate = new RateBucket(this.limits.maxStartRate, this.limits.maxStartRate);
    this.nextChannel = this.role === 'initiator' ? 1 : 2;
  }


  /** Charge one peer start to the start-rate bucket (`maxStartRate` per second, equal burst). */
  takeStartToken(): boolean {
    return this.startRate.take(this.flow.now());
  }

  /** Allocate a channel number of our parity (RFC 3080 §2.3.1.2). */
  allocChannel(): number {
    if (this.channels.size - 1 >= this.limits.maxChannels) {
      throw new BeepError(ErrorCodes.LIMIT, `more than ${this.limits.maxChannels} channels`);
    }
    for (;;) {
      const n = this.nextChannel;
      this.nextChannel = n + 2 > 2147483647 ? (this.role === 'initiator' ? 1 : 2) : n + 2;
      if (!this.channels.has(n)) return n;
    }
  }

  /** Create channel state (before the start is sent or its reply queued). */
  createChannel(number: number, state: 'starting' | 'open'): Channel {
    const ch = new Channel(this.core, number, state, this.flow.open());
    this.channels.set(number, ch);
    return ch;
  }

  /** Bind a channel to its profile and announce it. */
  openChannel(ch: Channel, uri: string, content: Buffer | undefined, remote: boolean): void {
    ch.profile = uri;
    ch.handler = this.profiles.get(uri);
    ch.control = ch.handler?.control === true;
    ch.flowState.control = ch.control;
    const next = nextChannelState(ch.state, 'open');
    if (next === null) return;
    ch.state = next;
    this.checkQuiescent(ch); // wake anyone waiting for the start to finish
    if (remote) this.core.emit('channel', ch);
    if (diagnostics.channelOpen.hasSubscribers) {
      diagnostics.channelOpen.publish({ sessionId: this.sessionId, channel: ch.number, profile: uri, remote } satisfies ChannelEvent);
    }
    try {
      ch.handler?.onOpen?.(ch, content);
    } catch (err) {
      this.core.emit('handlerError', err);
    }
    // MSGs that arrived between the start reply and now.
    this.dispatcher.dispatch(ch);
  }

  /**
   * Advertise a new channel's whole receive window (a SEQ) rather than
   * waiting for the first 4096 octets to be consumed. Called as the start
   * reply's last frame is taken (management.ts), the SEQ goes in the same
   * write right after the reply; otherwise with the next write this
   * event-loop turn makes, or at its end — never in a write of its own.
   */
  announceWindow(ch: Channel): void {
    if (ch.state === 'closed' || ch.recv.size <= 4096) return;
    this.scheduler.noteCredit(ch);
    if (!this.announcing) {
      this.announcing = true;
      setImmediate(this.announceDue);
    }
  }

  /** A flush is due at the end of this turn for the windows announced in it. */
  private announcing = false;
  private readonly announceDue = (): void => {
    this.announcing = false;
    this.scheduler.requestOutput();
  };

  /** A start we sent was refused or failed: forget the reserved number. */
  abortStart(ch: Channel): void {
    const next = nextChannelState(ch.state, 'abortStart');
    if (next === null) return;
    ch.state = next;
    if (this.channels.get(ch.number) === ch) this.channels.delete(ch.number);
    this.checkQuiescent(ch);
  }

  /** Was channel `n` closed lately (so a frame or close for it may have crossed ours)? */
  wasRecentlyClosed(n: number): boolean {
    return this.recentlyClosed.indexOf(n) >= 0;
  }

  /** Remove a channel, failing whatever was pending on it. */
  removeChannel(ch: Channel, err: Error | undefined): void {
    const next = nextChannelState(ch.state, 'remove');
    if (next === null) return;
    ch.state = next;
    if (this.channels.get(ch.number) === ch) this.channels.delete(ch.number);
    ch.flowState.close();
    this.recentlyClosed[this.recentNext] = ch.number;
    this.recentNext = (this.recentNext + 1) % RECENT_CLOSED;
    this.scheduler.forget(ch);
    // The dispatcher counts the channel's MSGs out before they are failed and dropped.
    this.dispatcher.forget(ch);
    // What was pending fails; a quiet close (the common case) builds no error and no closure.
    if (ch.outstanding.size > 0 || ch.inbound.size > 0 || ch.outQueue.length > 0) failPending(ch, err);
    ch.inQueue.length = 0;
    if (ch.quiesceWaiters.length > 0) {
      const w = ch.quiesceWaiters;
      ch.quiesceWaiters = [];
      for (const f of w) f();
    }
    if (ch.number !== 0 && ch.profile !== undefined && diagnostics.channelClose.hasSubscribers) {
      const e = err instanceof BeepError ? { code: err.code, message: err.message } : err ? { code: ErrorCodes.CHANNEL_CLOSED, message: err.message } : undefined;
      diagnostics.channelClose.publish({ sessionId: this.sessionId, channel: ch.number, profile: ch.profile, ...(e ? { error: e } : {}) } satisfies ChannelEvent);
    }
    ch.emit('close', err);
    try {
      ch.handler?.onClosed?.(ch, err);
    } catch (e2) {
      this.core.emit('handlerError', e2);
    }
  }

  /** We agreed to the peer's close of `ch` (RFC 3080 §2.3.1.3): what is in flight finishes first. */
  closeAgreed(ch: Channel): void {
    const next = nextChannelState(ch.state, 'closeAgreed');
    if (next !== null) ch.state = next;
  }

  /** Is nothing in flight on `ch` (RFC 3080 §2.3.1.3 preconditions of `ok`)? */
  isQuiescent(ch: Channel): boolean {
    return ch.outQueue.length === 0 && ch.outstanding.size === 0 && ch.inbound.size === 0 && ch.active === null;
  }

  /** Have all MSGs we sent on `ch` been acknowledged (a reply frame received)? */
  allAcknowledged(ch: Channel): boolean {
    for (const out of ch.outQueue) if (out.type === 'MSG') return false;
    for (const pr of ch.outstanding.values()) if (pr.replyKind === undefined) return false;
    return true;
  }

  /** Resolve when `test(ch)` holds (re-checked on every state change of `ch`). */
  waitFor(ch: Channel, test: (ch: Channel) => boolean): Promise<void> {
    if (test(ch) || ch.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (test(ch) || ch.state === 'closed') resolve();
        else ch.quiesceWaiters.push(check);
      };
      ch.quiesceWaiters.push(check);
    });
  }

  /** */
  checkQuiescent(ch: Channel): void {
    if (ch.quiesceWaiters.length === 0) return;
    const w = ch.quiesceWaiters;
    ch.quiesceWaiters = [];
    for (const f of w) f();
  }
}
