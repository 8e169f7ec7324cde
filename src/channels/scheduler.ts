/**
 * @internal
 * The output scheduler of a session core: which channels owe a SEQ, which
 * have frames ready, and the batch {@link Scheduler.pull} cuts from them (SEQ
 * frames first, RFC 3081 §3.1.4; then channel 0; then control channels; then
 * the rest, weighted round-robin). It owns the ready rings, the batch and the
 * output-held flag; what a batch leaves to do (hand a channel its next MSG,
 * tell a sender its message is out, look at quiescence) it returns as effects
 * in an {@link AfterList} for the core to carry out.
 *
 * @module
 */
import { FrameBatch, type DataFrameHeader } from '../framing/index.js';
import type { Channel } from './channel.js';
import type { OutboundMessage } from './message.js';
import { MESSAGE_COST, type SessionFlow } from './flow.js';
import { INITIAL_WINDOW } from './window.js';
import { ReadyRing } from './ring.js';
import type { ResolvedLimits } from './types.js';
import { diagnostics, previewOf, type FrameEvent, type SessionStats } from './diagnostics.js';

/**
 * RFC 1122 §4.2.3.4 override timeout (ms): a send window that silly-window
 * avoidance holds back is used anyway after this long (the RFC's 0.1–1 s).
 */
export const SWS_OVERRIDE_MS = 200;

/** Effect kinds of a batch: hand `ch` its next MSG. */
export const AFTER_DISPATCH = 0;
/** Effect: reconsider `ch`'s credit (what it owes changed). */
export const AFTER_RECHECK = 1;
/** Effect: the message's queue fell to the high-water mark: wake its writer. */
export const AFTER_DRAIN = 2;
/** Effect: the message's last frame is out. */
export const AFTER_DONE = 3;
/** Effect: `ch` may have become quiescent. */
export const AFTER_QUIESCENT = 4;

const EMPTY = new Uint8Array(0);

/**
 * Work a batch leaves to do, in order, as (kind, object) pairs: no closure per
 * frame, and the array keeps its size between pulls (setting a JS array's
 * length to 0 would drop its storage).
 */
export class AfterList {
  readonly items: unknown[] = [];
  n = 0;
  add(kind: number, x: unknown): void {
    this.items[this.n] = kind;
    this.items[this.n + 1] = x;
    this.n += 2;
  }
}

/** What the scheduler tells its owner: output is ready, or a channel wants a timer. */
export interface SchedulerEvents {
  /** There are frames to pull. */
  output(): void;
  /** Call {@link Scheduler.wakeup} for `ch` after `ms`. */
  wakeup(ms: number, ch: Channel): void;
}

/** @internal The session's output scheduler (see the module comment). */
export class Scheduler {
  /** Output stopped by a tuning exchange (RFC 3080 §3.1: nothing more is sent). */
  outputHeld = false;
  // The ready sets (ring.ts): channels owing a SEQ, channels with output ready, control ones first.
  private readonly seqPending = new ReadyRing<Channel>(1);
  private readonly ready = new ReadyRing<Channel>(2);
  private readonly readyControl = new ReadyRing<Channel>(4);
  private outputRequested = false;
  private closed = false;
  /** The frames of the batch being built, and the payload views of the frame being cut. */
  private readonly batch = new FrameBatch();
  private readonly parts: Uint8Array[] = [];
  private readonly limits: ResolvedLimits;
  private readonly stats: SessionStats;
  private readonly flow: SessionFlow;
  private readonly sessionId: number;
  private readonly events: SchedulerEvents;

  constructor(limits: ResolvedLimits, stats: SessionStats, flow: SessionFlow, sessionId: number, events: SchedulerEvents) {
    this.limits = limits;
    this.stats = stats;
    this.flow = flow;
    this.sessionId = sessionId;
    this.events = events;
  }

  /** True when {@link pull} would return something. */
  get hasOutput(): boolean {
    return this.outputRequested;
  }

  /** `ch` may have frames to send (or owes a SEQ once its window is closed). */
  markReady(ch: Channel): void {
    if (this.closed) return;
    if (ch.number !== 0) (ch.control ? this.readyControl : this.ready).add(ch);
    // Issue 17: output queued behind a closed window is owed: recharge it before the next credit.
    if (ch.send.available === 0) this.seqPending.add(ch);
    this.requestOutput();
  }

  /** Reconsider `ch`'s credit at the next batch: the application consumed octets, or what it owes changed. */
  recheckCredit(ch: Channel): void {
    if (ch.state === 'closed') return;
    this.seqPending.add(ch);
    // A credit that makes no SEQ due and no debt to recharge (nothing queued out, nothing owed,
    // no MSG waiting on it) asks for no flush: it waits in the ring for the next pull.
    const f = ch.flowState;
    if (ch.outQueue.length > 0 || f.owed !== 0 || ch.inQueue.length > 0 || f.updateDue(0)) this.requestOutput();
  }

  /**
   * Reconsider `ch`'s credit at the next batch without asking for one: a SEQ
   * that may wait for other output, or for the owner's {@link requestOutput}.
   */
  noteCredit(ch: Channel): void {
    if (ch.state !== 'closed' && !this.closed) this.seqPending.add(ch);
  }

  /** Ask the owner to pull. */
  requestOutput(): void {
    if (this.outputRequested || this.closed) return;
    this.outputRequested = true;
    this.events.output();
  }

  /** Let output flow again after a tuning exchange that did not go ahead. */
  releaseOutput(): void {
    if (!this.outputHeld) return;
    this.outputHeld = false;
    this.requestOutput();
  }

  /** `ch` closed: it leaves every ring. */
  forget(ch: Channel): void {
    this.ready.delete(ch);
    this.readyControl.delete(ch);
    this.seqPending.delete(ch);
  }

  /** The session is ending: nothing is scheduled any more. */
  close(): void {
    this.closed = true;
  }

  /** Empty every ring (after the channels were removed). */
  clear(): void {
    this.ready.clear();
    this.readyControl.clear();
    this.seqPending.clear();
  }

  /** The owner's timer for a `wakeup` fired: look at `ch`'s output again. */
  wakeup(ch: Channel): void {
    ch.swsWakeupPending = false;
    if (ch.state === 'closed' || this.closed) return;
    this.markReady(ch);
  }

  /**
   * Octets of replies `ch` owes the peer that the peer's window does not let
   * us send, plus {@link MESSAGE_COST} per MSG waiting behind them: memory
   * the peer controls. A channel holding them is not credited (the window
   * advertised shrinks by as much), so a profile that cannot send stops
   * receiving — backpressure from the outbound side to the inbound window.
   * Our own MSGs are not counted (their writers wait at `sendHighWaterMark`),
   * and while we await replies on the channel a window of 4096 octets stays
   * open for them: two peers that each withheld credit for replies the other
   * will not take would otherwise deadlock.
   */
  owedOf(ch: Channel): number {
    if (ch.outQueue.length === 0) return 0;
    const avail = ch.send.available;
    let q = 0;
    for (const o of ch.outQueue) {
      if (o.type === 'MSG') continue;
      q += o.queued;
      if (q > avail + ch.recv.size) break; // enough to withhold every credit
    }
    const blocked = q - avail;
    if (blocked <= 0) return 0;
    const held = blocked + MESSAGE_COST * ch.inbound.size;
    return ch.outstanding.size > 0 ? Math.min(held, Math.max(0, ch.recv.size - INITIAL_WINDOW)) : held;
  }

  /**
   * Take frames to write, at most about `budget` octets, into one batch: SEQ
   * frames first (RFC 3081 §3.1.4), then channel 0 (`ch0`), then one frame per
   * channel round-robin. Work left to do is added to `after`. Returns `null`
   * when nothing is ready.
   */
  pull(budget: number, ch0: Channel, after: AfterList): Uint8Array[] | null {
    this.outputRequested = false;
    if (this.closed || this.outputHeld) return null;
    const out = this.batch;
    let bytes = 0;
    // Issue 17: charge what each channel owes first, so every credit below sees the session's budget.
    const seqPending = this.seqPending;
    for (let i = 0; i < seqPending.size; i++) {
      const ch = seqPending.at(i);
      if (ch.state === 'closed') continue;
      ch.flowState.setOwed(this.owedOf(ch));
      // Nothing owed (any more): hand the profile its next MSG, if one waits (see Dispatcher.dispatch).
      if (ch.flowState.owed === 0 && ch.active === null && ch.inQueue.length > 0) after.add(AFTER_DISPATCH, ch);
    }
    for (let i = 0; i < seqPending.size; i++) {
      const ch = seqPending.at(i);
      const u = ch.state === 'closed' ? null : ch.flowState.takeUpdate(false, ch.flowState.owed);
      if (u) {
        bytes += out.seq(ch.number, u.ackno, u.window);
        this.stats.seqOut++;
        if (diagnostics.frameOut.hasSubscribers) {
          const frame = { type: 'SEQ', channel: ch.number, ackno: u.ackno, window: u.window } as const;
          diagnostics.frameOut.publish({ sessionId: this.sessionId, direction: 'out', frame, preview: EMPTY, ...(ch.number !== 0 ? { flow: ch.flowState.snapshot() } : {}) } satisfies FrameEvent);
        }
      }
    }
    seqPending.clear();
    while (bytes < budget && !this.outputHeld && this.canSend(ch0)) bytes += this.frameFrom(ch0, out, after);
    // Control channels next, then the rest, each set weighted round-robin.
    bytes = this.serve(this.readyControl, out, after, bytes, budget);
    bytes = this.serve(this.ready, out, after, bytes, budget);
    if (bytes >= budget && !this.outputHeld) this.requestOutput();
    this.stats.octetsOut += bytes;
    return out.take();
  }

  /**
   * Frames from the channels of one ready set, weighted round-robin, within the
   * budget. A channel's turn (`weight` frames) may span several pulls: when the
   * budget runs out mid-turn it stays at the front with what is left of its
   * turn, so weights hold even when one frame fills a whole batch.
   */
  private serve(set: ReadyRing<Channel>, out: FrameBatch, after: AfterList, bytes: number, budget: number): number {
    while (bytes < budget && !this.outputHeld && set.size > 0) {
      const ch = set.at(0);
      if (ch.turnLeft <= 0) ch.turnLeft = Math.min(64, Math.max(1, Math.floor(ch.weight) || 1));
      while (ch.turnLeft > 0 && bytes < budget && !this.outputHeld && this.canSend(ch)) {
        bytes += this.frameFrom(ch, out, after);
        ch.turnLeft--;
      }
      const more = this.canSend(ch);
      if (ch.turnLeft > 0 && more) break; // out of budget mid-turn: it goes on next time
      set.shift();
      ch.turnLeft = 0;
      if (more) set.add(ch); // to the back: round-robin
    }
    return bytes;
  }

  private canSend(ch: Channel): boolean {
    if (ch.state === 'closed' || ch.state === 'starting') return false;
    const head = ch.outQueue[0];
    if (!head || !head.sendable) return false;
    return this.usableWindow(ch, head) || (head.queued === 0 && head.ended);
  }

  /**
   * Silly-window avoidance on the sending side (RFC 1122 §4.2.3.4: send when
   * "at least a fraction Fs of the maximum window can be sent", or when "all
   * queued data can be sent now"; RFC 813): when the peer opens its window
   * a few octets at a time, a window smaller than min(maxSendFrame, ⅛ of the
   * window its latest SEQ advertised, at least 512) is not used unless
   * everything queued of the message fits in it. (The tail of a window a
   * single SEQ opened wide is used: that is no syndrome.) A window held back
   * this way is used after {@link SWS_OVERRIDE_MS} of holding it back (RFC 1122's
   * override timeout, 0.1–1 s): the scheduler asks its owner for a `wakeup`
   * then, so a peer whose whole window is that small still gets its octets,
   * one small frame per channel per interval at most.
   */
  private usableWindow(ch: Channel, head: OutboundMessage): boolean {
    const s = ch.send;
    const avail = s.available;
    if (avail === 0) return false;
    if (head.queued <= avail) return true;
    const min = Math.min(this.limits.maxSendFrame, Math.max(INITIAL_WINDOW, s.lastWindow) >>> 3);
    if (avail >= min || s.lastOpened >= min) return true;
    const now = this.flow.now();
    if (ch.swsHeldSince < 0) ch.swsHeldSince = now;
    const waited = now - ch.swsHeldSince;
    if (waited >= SWS_OVERRIDE_MS) return true;
    // One wakeup pending per channel, for what is left of the interval (a
    // timer may fire a fraction early by this clock: then it asks again).
    if (!ch.swsWakeupPending) {
      ch.swsWakeupPending = true;
      this.events.wakeup(Math.ceil(SWS_OVERRIDE_MS - waited) + 1, ch);
    }
    return false;
  }

  private frameFrom(ch: Channel, out: FrameBatch, after: AfterList): number {
    const head = ch.outQueue[0] as OutboundMessage;
    ch.swsHeldSince = -1;
    const seqno = ch.send.nextSeq;
    const max = Math.min(this.limits.maxSendFrame, ch.send.available);
    const parts = this.parts;
    const size = head.take(max, parts);
    const last = head.done;
    ch.send.consume(size);
    this.stats.framesOut++;
    if (ch.send.available === 0 && (!last || ch.outQueue.length > 1)) {
      this.stats.windowStalls++;
      ch.sendStalls++;
    }
    // Issue 17: sending what was owed may reopen the credit withheld for it.
    if (ch.flowState.owed > 0) after.add(AFTER_RECHECK, ch);
    if (diagnostics.frameOut.hasSubscribers) {
      const header: DataFrameHeader =
        head.type === 'ANS'
          ? { type: 'ANS', channel: ch.number, msgno: head.msgno, more: !last, seqno, size, ansno: head.ansno as number }
          : { type: head.type, channel: ch.number, msgno: head.msgno, more: !last, seqno, size };
      diagnostics.frameOut.publish({ sessionId: this.sessionId, direction: 'out', frame: header, preview: previewOf(parts) } satisfies FrameEvent);
    }
    const k = head.taken;
    const n = out.data(head.type, ch.number, head.msgno, !last, seqno, head.ansno, parts, size, k);
    for (let i = 0; i < k; i++) parts[i] = EMPTY; // hold no payload past its frame
    if (last) {
      ch.outQueue.shift();
      if (head.holdAfter) this.outputHeld = true;
      // Its last frame is out: tell its sender, then see whether the channel is quiescent.
      after.add(AFTER_DONE, head);
      after.add(AFTER_QUIESCENT, ch);
    }
    if (head.queued <= this.limits.sendHighWaterMark && head.drainWaiting) after.add(AFTER_DRAIN, head);
    return n;
  }
}
