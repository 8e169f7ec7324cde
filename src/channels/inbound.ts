/**
 * @internal
 * The inbound part of a session core: decodes octets into frames and checks
 * every header before its payload is read (RFC 3080 §2.2.1.1 and §2.2.1.2,
 * RFC 3081 §3.1), routes payload into the message it belongs to (as views),
 * and finishes what a complete frame ends. It owns the decoder and the state
 * of the frame being read; what it finds (a MSG to dispatch, a channel ready
 * to send, a reply complete) it hands to the dispatcher, the scheduler and
 * the core.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepFramingError, ErrorCodes, type ErrorCode } from '../errors.js';
import { FrameDecoder, type DataFrameHeader, type Frame, type FrameHeader } from '../framing/index.js';
import type { Channel, InboundRequest, PendingRequest } from './channel.js';
import { IncomingMessage } from './message.js';
import type { RxBlock } from './rx.js';
import { seqDiff } from './window.js';
import type { ResolvedLimits, CompatOptions } from './types.js';
import { diagnostics, previewOf, publishLimit, PREVIEW_OCTETS, type FrameEvent, type SessionStats } from './diagnostics.js';
import type { SessionCore } from './core.js';
import type { Scheduler } from './scheduler.js';
import type { Dispatcher } from './dispatch.js';

const EMPTY = new Uint8Array(0);

/** A reply's entity headers are in: hand it to whoever awaits it (its pending request is its owner). */
function replyReady(x: IncomingMessage): void {
  const pr = x.owner as PendingRequest;
  if (pr.abandoned) x.discard();
  else if (x.type === 'RPY') pr.sink.rpy(x);
  else if (x.type === 'ERR') pr.sink.err(x);
  else pr.sink.ans(x);
}

/** @internal The frame being read: its channel and the request it replies to; one object, reused for every frame. */
interface Current {
  /** Null between frames and for a SEQ. */
  ch: Channel | null;
  pr: PendingRequest | undefined;
  im: InboundRequest | undefined;
  first: boolean;
}

/** @internal The inbound part of a {@link SessionCore} (see the module comment). */
export class Inbound {
  private readonly core: SessionCore;
  private readonly channels: ReadonlyMap<number, Channel>;
  private readonly limits: ResolvedLimits;
  private readonly stats: SessionStats;
  private readonly sessionId: number;
  private readonly scheduler: Scheduler;
  private readonly dispatcher: Dispatcher;
  private readonly decoder: FrameDecoder;
  /** Header and payload preview of the frame being read, while `beepstream:frame:in` has subscribers. */
  private traceIn: { h: FrameHeader; parts: Uint8Array[]; n: number } | null = null;
  /** The frame being decoded: its channel and the request it replies to. */
  private readonly cur: Current = { ch: null, pr: undefined, im: undefined, first: false };
  /** The message the current frame's payload goes to (none for NUL). */
  private target: IncomingMessage | null = null;
  /** The receive block the chunk being decoded is in (its payload views hold it while queued). */
  private rxBlock: RxBlock | null = null;

  constructor(core: SessionCore, channels: ReadonlyMap<number, Channel>, scheduler: Scheduler, dispatcher: Dispatcher, compat: CompatOptions | undefined) {
    this.core = core;
    this.channels = channels;
    this.limits = core.limits;
    this.stats = core.stats;
    this.sessionId = core.id;
    this.scheduler = scheduler;
    this.dispatcher = dispatcher;
    this.decoder = new FrameDecoder({
      maxHeaderLine: this.limits.maxHeaderLine,
      maxFrameSize: this.limits.maxFrameSize,
      onHeader: (h) => this.checkHeader(h),
      // Interop (off by default): a NUL carrying an empty header block; its 2 octets reopen the window at once.
      acceptNulHeaderBlock: compat?.acceptNulHeaderBlock === true,
      // onFrame keeps no frame: one object serves them all.
      reuseFrame: true,
      onNulHeaderBlock: (h) => {
        const ch = this.channels.get(h.channel);
        if (ch) this.credit(ch, h.size);
      },
      // Payload octets go straight into the message they belong to, as views.
      onPayload: (part) => {
        if (this.traceIn && this.traceIn.n < PREVIEW_OCTETS) {
          // A copy: the read buffer is reused once the frame is decoded.
          this.traceIn.parts.push(Buffer.from(part.subarray(0, PREVIEW_OCTETS - this.traceIn.n)));
          this.traceIn.n += Math.min(part.byteLength, PREVIEW_OCTETS - this.traceIn.n);
        }
        this.target?.deliver(part, false, this.rxBlock);
      },
    });
  }

  /** True while part of a frame has been read and the rest has not (slow-loris watch). */
  get midFrame(): boolean {
    return !this.decoder.idle;
  }

  /** Octets decoded so far (for errors). */
  get offset(): number {
    return this.decoder.offset;
  }

  /**
   * Decode `chunk` (in `block`, if the glue reads into reused memory), finishing
   * every frame in it. Throws the error that terminates the session.
   */
  receive(chunk: Uint8Array, block: RxBlock | null): void {
    this.stats.octetsIn += chunk.byteLength;
    this.rxBlock = block;
    const dispatcher = this.dispatcher;
    // A read fed from inside another one's decoding (a test's loopback) leaves the end to the outer one.
    const outer = !dispatcher.reading;
    dispatcher.reading = true;
    let decoded = false;
    try {
      this.decoder.push(chunk, this.onDecoded);
      decoded = true;
    } finally {
      this.rxBlock = null;
      if (outer) {
        dispatcher.reading = false;
        // What the read queued still runs (reply callbacks are owed their one call).
        if (!decoded) dispatcher.readFailed();
      }
    }
    // Handlers of the MSGs this read completed run now, in one go (a frame error above skips them: the session ends).
    if (outer) dispatcher.endOfRead();
  }

  private readonly onDecoded = (f: Frame): void => this.onFrame(f);

  private protocol(message: string, code: ErrorCode = ErrorCodes.PROTOCOL): never {
    throw new BeepFramingError(code, message, this.decoder.offset);
  }

  /** Validate a header before its payload is read (throws to terminate). */
  private checkHeader(h: FrameHeader): void {
    this.clearCurrent();
    this.traceIn = diagnostics.frameIn.hasSubscribers ? { h, parts: [], n: 0 } : null;
    const ch = this.channels.get(h.channel);
    if (h.type === 'SEQ') {
      if (!ch && !this.core.lifecycle.wasRecentlyClosed(h.channel)) {
        this.protocol(`SEQ for channel ${h.channel}, which is not in use`);
      }
      return;
    }
    // Until the greeting (RPY 0 0, or ERR 0 0) is complete, nothing else may arrive.
    const greetingDue = (this.channels.get(0) as Channel).outstanding.has(0);
    if (greetingDue && !(h.channel === 0 && h.msgno === 0 && (h.type === 'RPY' || h.type === 'ERR'))) {
      this.protocol(`expected the peer's greeting (RPY 0 0), got ${h.type} ${h.channel} ${h.msgno}`);
    }
    // RFC 3080 §2.2.1.1: "if the value of the channel number doesn't refer to an existing channel".
    if (!ch || (ch.state === 'starting' && !ch.startReplied) || ch.state === 'closed') {
      this.protocol(`frame for channel ${h.channel}, which is not in use`);
    }
    // RFC 3080 §2.2.1.2 / RFC 3081 §3.1.2.
    const w = ch.recv.check(h.seqno, h.size);
    if (w === 'seqno') {
      this.protocol(`channel ${h.channel}: seqno ${h.seqno}, expected ${ch.recv.expected}`, ErrorCodes.SEQNO_MISMATCH);
    }
    if (w === 'overrun') {
      this.protocol(`channel ${h.channel}: ${h.size} octets exceed the window of ${ch.recv.remaining}`, ErrorCodes.WINDOW_OVERRUN);
    }
    // Issue 17 (CVE-2019-9518, empty frames): an intermediate frame with no
    // octets is well-formed (RFC 3080 §2.2.1) but carries nothing; RFC 3080
    // has no reply for a frame, so too many of them end the session.
    if (h.size === 0 && h.more) this.core.checkProgress('empty intermediate frame', 'frame');
    const isMsg = h.type === 'MSG';
    // "if the continuation indicator of the previous frame received on the same
    // channel was intermediate ("*"), and its message number isn't identical".
    if (ch.lastMore) {
      if (ch.lastMore.msgno !== h.msgno) {
        this.protocol(`channel ${h.channel}: frame for msgno ${h.msgno} inside message ${ch.lastMore.msgno}`);
      }
      if ((ch.lastMore.kind === 'MSG') !== isMsg || (h.type !== 'NUL' && ch.lastMore.kind !== h.type)) {
        this.protocol(`channel ${h.channel}: ${h.type} frame continues a ${ch.lastMore.kind} message`);
      }
      if (h.type === 'NUL') this.protocol(`channel ${h.channel}: NUL while an ANS is in progress`);
    }
    if (isMsg) {
      const im = ch.inbound.get(h.msgno);
      // "if the header starts with "MSG", and the message number refers to a
      // "MSG" message that has been completely received but for which a reply
      // has not been completely sent".
      if (im && im.received) this.protocol(`channel ${h.channel}: MSG ${h.msgno} reuses a message number awaiting its reply`);
      if (!im && ch.inbound.size >= this.limits.maxInboundQueue) {
        publishLimit({ sessionId: this.sessionId, limit: 'maxInboundQueue', action: 'terminated', detail: `channel ${h.channel}: more than ${this.limits.maxInboundQueue} MSGs awaiting replies` });
        this.protocol(`channel ${h.channel}: more than ${this.limits.maxInboundQueue} MSGs awaiting replies`, ErrorCodes.LIMIT);
      }
      // Issue 17: MSGs awaiting replies on all channels together are bounded too
      // (each keeps a message, a responder and a reply alive).
      if (!im && this.dispatcher.inboundTotal >= this.limits.maxSessionInbound) {
        const detail = `more than ${this.limits.maxSessionInbound} MSGs awaiting replies on the session`;
        publishLimit({ sessionId: this.sessionId, limit: 'maxSessionInbound', action: 'terminated', detail });
        this.protocol(detail, ErrorCodes.MEMORY_BUDGET);
      }
      this.cur.ch = ch;
      this.beginFrame(h);
      return;
    }
    const pr = ch.outstanding.get(h.msgno);
    // "refers to a message number for which a reply has already been completely
    // received" / "that has never been sent".
    if (!pr || (pr.out !== null && !pr.out.started)) {
      this.protocol(`channel ${h.channel}: ${h.type} for msgno ${h.msgno}, which has no MSG awaiting a reply`);
    }
    const k = pr.replyKind;
    if (h.type === 'NUL') {
      // "if the header starts with "NUL", and ... the keyword of the
      // immediately-previous received frame for this reply isn't "ANS"".
      if (k !== undefined && k !== 'ANS') this.protocol(`channel ${h.channel}: NUL after ${k} for msgno ${h.msgno}`);
      if (pr.answers !== null && pr.answers.size > 0) this.protocol(`channel ${h.channel}: NUL while answers to msgno ${h.msgno} are incomplete`);
    } else if (k !== undefined && k !== h.type) {
      // "the three-character keyword starting this frame and the
      // immediately-previous received frame for this message number are not identical".
      this.protocol(`channel ${h.channel}: ${h.type} frame after ${k} for msgno ${h.msgno}`);
    }
    this.cur.ch = ch;
    this.cur.pr = pr;
    this.beginFrame(h);
  }

  /**
   * A data frame's header passed every check: account for its octets and find
   * the message its payload belongs to (creating it on the first frame).
   */
  private beginFrame(h: DataFrameHeader): void {
    const cur = this.cur;
    const ch = cur.ch as Channel;
    ch.flowState.onFrame(h.seqno, h.size);
    ch.lastMore = h.more ? { msgno: h.msgno, kind: h.type } : null;
    this.target = null;
    if (h.type === 'MSG') {
      let im = ch.inbound.get(h.msgno);
      if (!im) {
        const msg = new IncomingMessage('MSG', ch.number, h.msgno, undefined, (ch.msgHooks ??= this.hooksFor(ch, () => this.dispatcher.dispatch(ch))));
        im = { msg, received: false, replyDone: false, replyQueued: false, preempted: false };
        this.dispatcher.admit(ch, im);
      }
      cur.im = im;
      this.target = im.msg;
      return;
    }
    const pr = cur.pr as PendingRequest;
    cur.first = pr.replyKind === undefined;
    if (h.type === 'NUL') return;
    pr.replyKind = h.type;
    if (cur.first && h.type === 'ERR' && pr.out && !pr.out.done) {
      // RFC 3080 §2.6.3: a negative reply before our final MSG frame obliges us
      // to end the MSG with an empty complete frame.
      pr.out.truncate();
      this.scheduler.markReady(ch);
    }
    if (h.type === 'ANS') {
      const ansno = h.ansno as number;
      pr.answers ??= new Map();
      let m = pr.answers.get(ansno);
      if (!m) {
        m = new IncomingMessage('ANS', ch.number, h.msgno, ansno, (ch.replyHooks ??= this.hooksFor(ch, replyReady)));
        m.owner = pr;
        pr.answers.set(ansno, m);
        if (pr.abandoned) m.discard();
      }
      this.target = m;
      return;
    }
    if (!pr.reply) {
      pr.reply = new IncomingMessage(h.type, ch.number, h.msgno, undefined, (ch.replyHooks ??= this.hooksFor(ch, replyReady)));
      pr.reply.owner = pr;
      if (pr.abandoned) pr.reply.discard();
    }
    this.target = pr.reply;
  }

  /** A frame is complete (trailer read): finish what it ends. */
  private onFrame(f: Frame): void {
    if (this.traceIn) {
      const t = this.traceIn;
      this.traceIn = null;
      diagnostics.frameIn.publish({ sessionId: this.sessionId, direction: 'in', frame: t.h, preview: previewOf(t.parts) } satisfies FrameEvent);
    }
    if (f.type === 'SEQ') {
      this.stats.seqIn++;
      const ch = this.channels.get(f.channel);
      if (!ch) return; // recently closed: the SEQ crossed our close.
      const edge = ch.send.edge;
      // RFC 3081 §3.1.3: an ackno that cannot be valid terminates the session.
      if (!ch.send.update(f.ackno, f.window)) {
        this.protocol(`SEQ on channel ${f.channel} acknowledges octet ${f.ackno}, beyond what was sent`);
      }
      // Issue 17 (CVE-2019-9512/9515, ping and settings floods): a SEQ that
      // does not move the edge right changes nothing we may send (RFC 3081
      // §3.1.4 has SEQs sent as the window opens, and a receiver "SHOULD NOT
      // shrink the window", RFC 1122 §4.2.2.16); a flood of them ends the session.
      const moved = seqDiff(ch.send.edge, edge);
      if (moved === 0 || moved >= 0x80000000) this.core.checkProgress('SEQ that does not move the window edge right', 'frame');
      this.scheduler.markReady(ch);
      return;
    }
    this.stats.framesIn++;
    const cur = this.cur;
    const target = this.target;
    const ch = cur.ch as Channel;
    const im = cur.im as InboundRequest;
    const pr = cur.pr as PendingRequest;
    const first = cur.first;
    this.clearCurrent();
    this.target = null;
    if (f.type === 'MSG') {
      if (!f.more) {
        im.msg.deliver(EMPTY, true);
        im.received = true;
        if (im.replyDone) this.dispatcher.retireInbound(ch, im);
      }
      return;
    }
    if (f.type === 'NUL') {
      ch.outstanding.delete(f.msgno);
      if (!pr.abandoned) pr.sink.nul();
      this.core.lifecycle.checkQuiescent(ch);
      return;
    }
    if (!f.more) {
      if (f.type === 'ANS') pr.answers?.delete(f.ansno as number);
      else {
        ch.outstanding.delete(f.msgno);
        pr.onComplete?.(f.type as 'RPY' | 'ERR');
      }
      target?.deliver(EMPTY, true);
    }
    if (first || !f.more) this.core.lifecycle.checkQuiescent(ch);
  }

  private clearCurrent(): void {
    const cur = this.cur;
    cur.ch = null;
    cur.pr = undefined;
    cur.im = undefined;
    cur.first = false;
  }

  private hooksFor(ch: Channel, onReady: (m: IncomingMessage) => void) {
    return {
      credit: (n: number) => this.credit(ch, n),
      ready: onReady,
      maxEntityHeaders: this.limits.maxEntityHeaders,
      maxMessageSize: ch.number === 0 ? this.limits.maxMgmtMessage : this.limits.maxMessageSize,
    };
  }

  /** The application consumed `n` octets of channel `ch`: reopen its window (the flow policy decides when to advertise it). */
  credit(ch: Channel, n: number): void {
    ch.flowState.onConsume(n);
    this.scheduler.recheckCredit(ch);
  }
}
