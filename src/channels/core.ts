/**
 * The sans-IO BEEP session core: bytes in through {@link SessionCore.receive},
 * frames out through {@link SessionCore.pull}. It never touches a socket or a
 * timer; the Node glue in `session.ts` moves bytes and maps backpressure.
 *
 * Enforces RFC 3080 §2.2.1.1 (poorly-formed frames end the session), §2.3
 * (channel management), §2.6 (ordering) and RFC 3081 §3.1 (windows).
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { BeepError, BeepFramingError, BeepReplyError, ErrorCodes, type ErrorCode } from '../errors.js';
import { FrameDecoder, FrameBatch, type DataFrameHeader, type Frame, type FrameHeader, BEEP_XML, type EntityHeaders } from '../framing/index.js';
import { Channel, replyErrorFrom, type InboundRequest, type PendingRequest, type ReplySink, type RequestOptions } from './channel.js';
import * as outbound from './outbound.js';
import { IncomingMessage, type OutboundMessage, type BodyInit } from './message.js';
import { Responder, type ResponderHost } from './responder.js';
import type { RxBlock } from './rx.js';
import { handleMgmtMessage, requestMgmt } from './management.js';
import { MESSAGE_COST, SessionFlow, type MemoryPool } from './flow.js';
import { INITIAL_WINDOW, seqDiff } from './window.js';
import { ReadyRing } from './ring.js';
import { resolveLimits, type ChannelProfile, type ResolvedLimits, type Role, type SessionLimits, type CompatOptions, type CloseDecision, type SessionIdentity, type TransportSecurity } from './types.js';
import type { Greeting } from './mgmt.js';
import { diagnostics, newSessionStats, nextSessionId, previewOf, publishLimit, PREVIEW_OCTETS, type ChannelEvent, type FrameEvent, type SessionStats } from './diagnostics.js';
import { buildGreeting, buildError, parseMgmt } from './mgmt.js';
import { handleOf } from './handle.js';

/** Options of a {@link SessionCore}. */
export interface SessionCoreOptions {
  /** Our role (RFC 3080 §2.1): decides channel-number parity. */
  role: Role;
  /** Profiles this peer serves. */
  profiles?: readonly ChannelProfile[];
  /** Greeting `features` tokens (extensions must start with `x-`). */
  features?: readonly string[];
  /** Greeting `localize` language tags, most desirable first. */
  localize?: readonly string[];
  /** Limits and tuning. */
  limits?: SessionLimits;
  /** Opt-in interoperability tolerances (all off by default). */
  compat?: CompatOptions;
  /** What the transport provides (TLS or not); set by the glue. */
  security?: TransportSecurity;
  /**
   * Offer and accept only tuning profiles until the transport is TLS: other
   * starts are refused with 538 and not advertised (RFC 3080 §3).
   */
  requireTls?: boolean;
  /**
   * Listener only: refuse the session in the greeting (RFC 3080 §2.4), e.g.
   * `{ code: 421, diagnostic: 'overloaded' }`.
   */
  refuse?: { code: number; diagnostic?: string };
  /** Decide on the peer's request to release the session. Default: accept once quiescent. */
  onReleaseRequest?: (core: SessionCore) => CloseDecision | Promise<CloseDecision>;
  /** @internal Session id and counters, kept by the glue across tuning resets. */
  id?: number;
  /** @internal */
  stats?: SessionStats;
  /** The core's clock in milliseconds (default `performance.now`): flow policy, start-rate and no-progress buckets, silly-window override. Injected by tests; the core reads no other clock. */
  clock?: () => number;
  /** A memory budget shared with other sessions (a listener's `memoryBudget`; issue 17). */
  memoryPool?: MemoryPool;
}

/** Events of a {@link SessionCore}. */
export interface SessionCoreEvents {
  /** The peer's greeting arrived. */
  greeting: [greeting: Greeting];
  /** The peer started a channel. */
  channel: [channel: Channel];
  /** The session ended: released cleanly (`error` undefined) or terminated. */
  close: [error: BeepError | undefined];
  /** There are frames to pull. */
  output: [];
  /** Call {@link SessionCore.wakeup} for the channel after `ms` (RFC 1122's silly-window override timeout). */
  wakeup: [ms: number, channel: Channel];
  /** A profile handler or body source threw; the session carries on. */
  handlerError: [error: unknown];
}

/** Options of a channel start. */
export interface StartChannelOptions {
  /** Piggybacked initialization content for each profile (RFC 3080 §2.3.1.2). */
  content?: string | Uint8Array;
  /** The server name to ask for (first successful start only). */
  serverName?: string;
  signal?: AbortSignal;
  /**
   * Tuning (RFC 3080 §3.1): send nothing more on the session after the start
   * until its reply arrives. On a refusal output resumes; on success the
   * caller resets the transport.
   */
  hold?: boolean;
}

/** Session life cycle. */
export type SessionState = 'greeting' | 'open' | 'releasing' | 'closed';

const RECENT_CLOSED = 256;
/**
 * RFC 1122 §4.2.3.4 override timeout (ms): a send window that silly-window
 * avoidance holds back is used anyway after this long (the RFC's 0.1–1 s).
 */
export const SWS_OVERRIDE_MS = 200;

// Kinds of pull()'s deferred work.
const AFTER_DISPATCH = 0;
const AFTER_RECHECK = 1;
const AFTER_DRAIN = 2;
const AFTER_DONE = 3;
const AFTER_QUIESCENT = 4;
const EMPTY = new Uint8Array(0);
const RESOLVED = Promise.resolve();

/**
 * Work pull() does once its batch is built, in order, as (kind, object)
 * pairs: no closure per frame, and the array keeps its size between pulls
 * (setting a JS array's length to 0 would drop its storage).
 */
class AfterList {
  readonly items: unknown[] = [];
  n = 0;
  add(kind: number, x: unknown): void {
    this.items[this.n] = kind;
    this.items[this.n + 1] = x;
    this.n += 2;
  }
}

/** A reply's entity headers are in: hand it to whoever awaits it (its pending request is its owner). */
function replyReady(x: IncomingMessage): void {
  const pr = x.owner as PendingRequest;
  if (pr.abandoned) x.discard();
  else if (x.type === 'RPY') pr.sink.rpy(x);
  else if (x.type === 'ERR') pr.sink.err(x);
  else pr.sink.ans(x);
}

/**
 * Protocol state of one BEEP session, independent of any transport.
 */
export class SessionCore extends EventEmitter<SessionCoreEvents> {
  readonly role: Role;
  readonly limits: ResolvedLimits;
  /** Set by the transport glue: the public object users see (e.g. a Session). */
  owner: unknown = this;
  /** Profiles served, by URI. */
  readonly profiles = new Map<string, ChannelProfile>();
  /** Open channels by number, channel 0 included. */
  readonly channels = new Map<number, Channel>();
  /** The peer's greeting, once received. */
  peerGreeting: Greeting | null = null;
  /** The serverName of the first successful start (RFC 3080 §2.3.1.2). */
  serverName: string | undefined;
  state: SessionState = 'greeting';
  /** What the transport provides. */
  readonly security: TransportSecurity;
  /** The authenticated identity, once a SASL profile (or the like) established one. */
  identity: SessionIdentity | undefined;
  /** @internal Output stopped by a tuning exchange (RFC 3080 §3.1: nothing more is sent). */
  outputHeld = false;
  /** @internal The positive reply to our `<close number='0'>` has fully arrived (not yet parsed). */
  releaseAcked = false;
  /** @internal Shutting down: the peer's channel starts are refused with 421. */
  draining = false;
  /** Process-unique id of the session (kept across tuning resets), as in diagnostics events and logs. */
  readonly id: number;
  /** Octets, frames, SEQs and window stalls so far (kept across tuning resets). */
  readonly stats: SessionStats;
  /** Header and payload preview of the frame being read, while `beepstream:frame:in` has subscribers. */
  private traceIn: { h: FrameHeader; parts: Uint8Array[]; n: number } | null = null;
  /** Why the session ended, if it failed. */
  failure: BeepError | undefined;
  /** @internal */ readonly options: SessionCoreOptions;
  /** @internal The receive-window policy: RTT estimate, budget, channel sizing (flow.ts). */
  readonly flow: SessionFlow;

  private readonly decoder: FrameDecoder;
  // The scheduler's sets (ring.ts): channels owing a SEQ, channels with output ready, control ones first.
  private readonly seqPending = new ReadyRing<Channel>(1);
  private readonly ready = new ReadyRing<Channel>(2);
  private readonly readyControl = new ReadyRing<Channel>(4);
  private readonly recentlyClosed: number[] = [];
  private nextChannel: number;
  private readonly greeted: Promise<Greeting>;
  private greetedResolve!: (g: Greeting) => void;
  private greetedReject!: (e: Error) => void;
  private outputRequested = false;
  /** Spare lists for pull()'s deferred work (reused; a second one if pull() is re-entered). */
  private readonly afterFree: AfterList[] = [];
  /** When the session ends, let queued output drain and end the transport (rather than destroy it). */
  gracefulEnd = false;
  private released = false;
  /** The frame being decoded: its channel and the request it replies to. */
  private cur: { ch: Channel; pr?: PendingRequest; im?: InboundRequest; first?: boolean } | null = null;
  /** The message the current frame's payload goes to (none for NUL). */
  private target: IncomingMessage | null = null;
  /** The frames of the batch pull() is building, and the payload views of the frame it is cutting. */
  private readonly batch = new FrameBatch();
  private readonly parts: Uint8Array[] = [];

  constructor(options: SessionCoreOptions) {
    super();
    this.options = options;
    this.role = options.role;
    this.security = options.security ?? { tls: false };
    this.limits = resolveLimits(options.limits, options.role);
    this.id = options.id ?? nextSessionId();
    this.stats = options.stats ?? newSessionStats();
    this.flow = new SessionFlow(this.limits, options.clock, this.stats);
    // Issue 17: what the peer can make this session hold is bounded (spec/limits.md).
    this.flow.memoryBudget = this.limits.sessionMemoryBudget;
    this.flow.pool = options.memoryPool;
    for (const p of options.profiles ?? []) {
      if (this.profiles.has(p.uri)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `profile ${p.uri} registered twice`);
      this.profiles.set(p.uri, p);
    }
    this.nextChannel = this.role === 'initiator' ? 1 : 2;
    this.greeted = new Promise<Greeting>((res, rej) => {
      this.greetedResolve = res;
      this.greetedReject = rej;
    });
    this.greeted.catch(() => undefined);
    this.decoder = new FrameDecoder({
      maxHeaderLine: this.limits.maxHeaderLine,
      maxFrameSize: this.limits.maxFrameSize,
      onHeader: (h) => this.checkHeader(h),
      // Interop (off by default): a NUL carrying an empty header block; its 2 octets reopen the window at once.
      acceptNulHeaderBlock: options.compat?.acceptNulHeaderBlock === true,
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
    const ch0 = new Channel(this, 0, 'open', this.flow.open(false));
    ch0.profile = 'beep:channel-management';
    this.channels.set(0, ch0);
    // The peer's greeting is a reply to a MSG 0 nobody sent (RFC 3080 §2.2.1.1,
    // "except during session establishment").
    ch0.outstanding.set(0, {
      msgno: 0,
      out: null,
      sink: this.greetingSink(),
      replyKind: undefined,
      reply: null,
      answers: null,
      abandoned: false,
    });
    this.sendGreeting();
  }

  /** @internal True while part of a frame has been read and the rest has not (slow-loris watch). */
  get midFrame(): boolean {
    return !this.decoder.idle;
  }

  /** True once the session has ended (released or terminated). */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Resolves with the peer's greeting; rejects if the session ends first or is refused. */
  whenGreeted(): Promise<Greeting> {
    return this.greeted;
  }

  /**
   * Record the session's authenticated identity (RFC 3080 §4). Only once: a
   * second authentication on the same session is refused.
   */
  setIdentity(identity: SessionIdentity): void {
    if (this.identity) throw new BeepError(ErrorCodes.INVALID_STATE, 'the session is already authenticated');
    this.identity = Object.freeze({ ...identity });
  }

  /** Whether a profile may run now: 538 before TLS, 530 before authentication. */
  profileAllowed(p: ChannelProfile): { code: number; diagnostic: string } | null {
    const needTls = p.requires?.tls === true || (this.options.requireTls === true && p.tuning !== true);
    if (needTls && !this.security.tls) return { code: 538, diagnostic: 'encryption required: tune the session with TLS first' };
    if (p.requires?.authentication === true && !this.identity) return { code: 530, diagnostic: 'authentication required' };
    return null;
  }

  /** Let output flow again after a tuning exchange that did not go ahead. */
  releaseOutput(): void {
    if (!this.outputHeld) return;
    this.outputHeld = false;
    this.requestOutput();
  }

  /** Profile URIs to advertise in our greeting now. */
  advertisedProfiles(): string[] {
    const out: string[] = [];
    for (const p of this.profiles.values()) {
      // Not offered while its TLS requirement cannot be met (authentication can still follow).
      if (this.profileAllowed(p)?.code === 538) continue;
      const a = p.advertise ?? true;
      if (typeof a === 'function' ? a(handleOf(this)) : a) out.push(p.uri);
    }
    return out;
  }

  private sendGreeting(): void {
    const ch0 = this.channels.get(0) as Channel;
    const refuse = this.options.refuse;
    if (refuse && this.role === 'listener') {
      // RFC 3080 §2.4: an unavailable listener sends a negative reply instead.
      const out = this.queueMessage(ch0, 'ERR', 0, undefined, buildError(refuse.code, refuse.diagnostic), { contentType: BEEP_XML });
      out.onDone = () =>
        queueMicrotask(() => {
          // "both BEEP peers terminate the session": close once the ERR is out.
          this.gracefulEnd = true;
          this.terminate(new BeepReplyError(ErrorCodes.SESSION_REFUSED, refuse.code, refuse.diagnostic ?? '', {}));
        });
      return;
    }
    const xml = buildGreeting({
      profiles: this.advertisedProfiles(),
      features: [...(this.options.features ?? [])],
      localize: [...(this.options.localize ?? [])],
    });
    // RFC 3080 §2.3.1.1: each peer sends its greeting immediately, never waiting for the other's.
    this.queueMessage(ch0, 'RPY', 0, undefined, xml, { contentType: BEEP_XML });
  }

  private greetingSink(): ReplySink {
    const onBody = (msg: IncomingMessage, positive: boolean): void => {
      msg.bytes(this.limits.maxMgmtMessage).then(
        (body) => this.onGreeting(body, positive, msg.contentType),
        (err: unknown) => this.terminate(asBeepError(err, ErrorCodes.BAD_REPLY)),
      );
    };
    return {
      rpy: (m) => onBody(m, true),
      err: (m) => onBody(m, false),
      ans: () => this.terminate(new BeepFramingError(ErrorCodes.PROTOCOL, 'greeting must be RPY or ERR')),
      nul: () => this.terminate(new BeepFramingError(ErrorCodes.PROTOCOL, 'greeting must be RPY or ERR')),
      fail: (e) => this.greetedReject(e),
    };
  }

  private onGreeting(body: Buffer, positive: boolean, _contentType: string): void {
    if (this.state === 'closed') return;
    let el;
    try {
      el = parseMgmt(body, { maxBytes: this.limits.maxMgmtMessage, maxDepth: this.limits.maxMgmtDepth });
    } catch (err) {
      // RFC 3080 §2.2.2.1: a poorly-formed reply on channel 0 ends the session.
      this.terminate(new BeepFramingError(ErrorCodes.BAD_REPLY, `poorly-formed greeting: ${(err as Error).message}`));
      return;
    }
    if (!positive || el.kind === 'error') {
      const code = el.kind === 'error' ? el.code : 0;
      const diag = el.kind === 'error' ? el.diagnostic : '';
      const e = new BeepReplyError(ErrorCodes.SESSION_REFUSED, code, diag);
      this.terminate(e);
      return;
    }
    if (el.kind !== 'greeting') {
      this.terminate(new BeepFramingError(ErrorCodes.BAD_REPLY, `expected <greeting>, got <${el.kind}>`));
      return;
    }
    const g: Greeting = { profiles: el.profiles, features: el.features, localize: el.localize };
    this.peerGreeting = g;
    if (this.state === 'greeting') this.state = 'open';
    this.greetedResolve(g);
    this.emit('greeting', g);
  }

  // ------------------------------------------------------------ inbound path

  /**
   * Feed octets read from the transport. Never throws: a poorly-formed frame
   * terminates the session (RFC 3080 §2.2.1.1) and emits `close` with the error.
   */
  receive(chunk: Uint8Array, block: RxBlock | null = null): void {
    if (this.state === 'closed') return;
    this.stats.octetsIn += chunk.byteLength;
    this.rxBlock = block;
    try {
      this.decoder.push(chunk, this.onDecoded);
    } catch (err) {
      this.terminate(asBeepError(err, ErrorCodes.PROTOCOL));
    }
    this.rxBlock = null;
  }

  private readonly onDecoded = (f: Frame): void => this.onFrame(f);
  /** The receive block the chunk being decoded is in (its payload views hold it while queued). */
  private rxBlock: RxBlock | null = null;

  private protocol(message: string, code: ErrorCode = ErrorCodes.PROTOCOL): never {
    throw new BeepFramingError(code, message, this.decoder.offset);
  }

  /** Validate a header before its payload is read (throws to terminate). */
  private checkHeader(h: FrameHeader): void {
    this.cur = null;
    this.traceIn = diagnostics.frameIn.hasSubscribers ? { h, parts: [], n: 0 } : null;
    const ch = this.channels.get(h.channel);
    if (h.type === 'SEQ') {
      if (!ch && !this.wasRecentlyClosed(h.channel)) {
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
    if (h.size === 0 && h.more) this.checkProgress('empty intermediate frame', 'frame');
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
        publishLimit({ sessionId: this.id, limit: 'maxInboundQueue', action: 'terminated', detail: `channel ${h.channel}: more than ${this.limits.maxInboundQueue} MSGs awaiting replies` });
        this.protocol(`channel ${h.channel}: more than ${this.limits.maxInboundQueue} MSGs awaiting replies`, ErrorCodes.LIMIT);
      }
      // Issue 17: MSGs awaiting replies on all channels together are bounded too
      // (each keeps a message, a responder and a reply alive).
      if (!im && this.inboundTotal >= this.limits.maxSessionInbound) {
        const detail = `more than ${this.limits.maxSessionInbound} MSGs awaiting replies on the session`;
        publishLimit({ sessionId: this.id, limit: 'maxSessionInbound', action: 'terminated', detail });
        this.protocol(detail, ErrorCodes.MEMORY_BUDGET);
      }
      this.cur = { ch };
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
    this.cur = { ch, pr };
    this.beginFrame(h);
  }

  /**
   * A data frame's header passed every check: account for its octets and find
   * the message its payload belongs to (creating it on the first frame).
   */
  private beginFrame(h: DataFrameHeader): void {
    const cur = this.cur as { ch: Channel; pr?: PendingRequest; im?: InboundRequest; first?: boolean };
    const ch = cur.ch;
    ch.flowState.onFrame(h.seqno, h.size);
    ch.lastMore = h.more ? { msgno: h.msgno, kind: h.type } : null;
    this.target = null;
    if (h.type === 'MSG') {
      let im = ch.inbound.get(h.msgno);
      if (!im) {
        const msg = new IncomingMessage('MSG', ch.number, h.msgno, undefined, (ch.msgHooks ??= this.hooksFor(ch, () => this.dispatch(ch))));
        im = { msg, received: false, replyDone: false, replyQueued: false, preempted: false };
        ch.inbound.set(h.msgno, im);
        this.inboundTotal++;
        ch.inQueue.push(im);
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
      this.markReady(ch);
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
      diagnostics.frameIn.publish({ sessionId: this.id, direction: 'in', frame: t.h, preview: previewOf(t.parts) } satisfies FrameEvent);
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
      if (moved === 0 || moved >= 0x80000000) this.checkProgress('SEQ that does not move the window edge right', 'frame');
      this.markReady(ch);
      return;
    }
    this.stats.framesIn++;
    const cur = this.cur as { ch: Channel; pr?: PendingRequest; im?: InboundRequest; first?: boolean };
    const target = this.target;
    this.cur = null;
    this.target = null;
    const ch = cur.ch;
    if (f.type === 'MSG') {
      const im = cur.im as InboundRequest;
      if (!f.more) {
        im.msg.deliver(EMPTY, true);
        im.received = true;
        if (im.replyDone) this.retireInbound(ch, im);
      }
      return;
    }
    const pr = cur.pr as PendingRequest;
    if (f.type === 'NUL') {
      ch.outstanding.delete(f.msgno);
      if (!pr.abandoned) pr.sink.nul();
      this.checkQuiescent(ch);
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
    if (cur.first || !f.more) this.checkQuiescent(ch);
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
  private credit(ch: Channel, n: number): void {
    ch.flowState.onConsume(n);
    if (ch.state === 'closed') return;
    this.seqPending.add(ch);
    this.requestOutput();
  }

  // ------------------------------------------------------------ dispatch (serial per channel)

  /** Hand the next MSG of `ch` to its profile, if none is being processed (RFC 3080 §2.6.1). */
  private dispatch(ch: Channel): void {
    // A channel whose start reply is still being read waits for its profile.
    if (ch.active !== null || this.state === 'closed' || ch.state === 'starting') return;
    const im = ch.inQueue[0];
    if (!im || !im.msg.headReady) return;
    // Issue 17: while replies on the channel wait for the peer's window, the
    // next MSG waits too (resumed from pull() once they are sent): a peer
    // that does not read cannot make the profile build reply after reply.
    // Not while we await replies on the channel ourselves: the peer's replies
    // may wait for our window, which only this MSG's handling reopens; two
    // peers holding each other's next MSG would deadlock (found by the
    // two-core model test, seed -1598136149).
    if (ch.number !== 0 && ch.outstanding.size === 0 && ch.outQueue.length > 0 && this.owedOf(ch) > 0) {
      this.recheckCredit(ch);
      return;
    }
    ch.inQueue.shift();
    ch.active = im;
    const responder = new Responder((ch.responderHost ??= this.responderHost(ch)), im);
    if (ch.number === 0) {
      handleMgmtMessage(this, im.msg, responder);
      return;
    }
    // Handlers run after the frames of this read are decoded, all in one
    // microtask (not one per MSG).
    const q = this.handlerQueue;
    const n = this.handlersQueued;
    q[n] = ch;
    q[n + 1] = im;
    q[n + 2] = responder;
    this.handlersQueued = n + 3;
    if (n === 0) void RESOLVED.then(this.runHandlers);
  }

  /** The host of every Responder of `ch`: its token is the MSG replied to. */
  private responderHost(ch: Channel): ResponderHost<InboundRequest> {
    return {
      send: (im, type, ansno, body, headers) => outbound.sendReply(this, ch, im, type, ansno, body, headers),
      stream: (im, type, ansno, headers) => outbound.replyWritable(this, ch, im, type, ansno, headers),
      finished: (im) => this.replyQueued(ch, im),
    };
  }

  /**
   * MSGs dispatched and waiting for their handler: (channel, request,
   * responder) triples in the first {@link handlersQueued} slots (the array
   * keeps its size: no allocation per MSG).
   */
  private readonly handlerQueue: unknown[] = [];
  private handlersQueued = 0;
  private readonly runHandlers = (): void => {
    const q = this.handlerQueue;
    // Handlers may dispatch more MSGs (a synchronous reply frees the channel): those are queued after these.
    for (let i = 0; i < this.handlersQueued; i += 3) {
      const ch = q[i] as Channel;
      const im = q[i + 1] as InboundRequest;
      const responder = q[i + 2] as Responder;
      q[i] = q[i + 1] = q[i + 2] = undefined;
      this.runHandler(ch, im, responder);
    }
    this.handlersQueued = 0;
  };

  private runHandler(ch: Channel, im: InboundRequest, responder: Responder): void {
    // The session or channel may have ended since: its MSGs have failed already.
    if (this.state === 'closed' || ch.state === 'closed') return;
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
    this.emit('handlerError', err);
    // Reply for the handler if it had not, without revealing its error text.
    // After some ANS an ERR is not allowed (error() throws): end with NUL instead.
    if (!res.replied) {
      // A body past maxMessageSize is the peer's doing: say so (554), not 451.
      const tooLarge = err instanceof BeepError && err.code === ErrorCodes.MESSAGE_TOO_LARGE;
      if (tooLarge) publishLimit({ sessionId: this.id, limit: 'maxMessageSize', action: 'refused', code: 554, detail: err.message });
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

  /** @internal */
  replyDone(ch: Channel, im: InboundRequest): void {
    im.replyDone = true;
    // Whatever the profile did not read of the MSG is dropped, reopening the window.
    im.msg.discard();
    if (im.received) this.retireInbound(ch, im);
  }

  private retireInbound(ch: Channel, im: InboundRequest): void {
    if (ch.inbound.delete(im.msg.msgno)) this.inboundTotal--;
    // Issue 17: the waiting message no longer holds memory: credit may reopen.
    if (ch.flowState.owed > 0) this.recheckCredit(ch);
    this.checkQuiescent(ch);
  }

  // ------------------------------------------------------------ hostile peers (issue 17, spec/limits.md)

  /** MSGs awaiting our replies on all channels (bounded by `maxSessionInbound`). */
  private inboundTotal = 0;
  private progressTokens = -1;
  private progressAt = 0;

  /**
   * @internal Charge one event that carries no progress (`maxNoProgressRate`
   * per second, burst of five seconds' worth). Returns `'ok'`, or `'refuse'`
   * while the bucket is empty (the caller refuses with 554 where the RFC has
   * a reply). A frame without progress on an empty bucket, or a further burst
   * of refusals, terminates the session (RFC 3080 has no reply for a frame).
   */
  checkProgress(what: string, kind: 'frame' | 'request'): 'ok' | 'refuse' {
    const rate = this.limits.maxNoProgressRate;
    const burst = 5 * rate;
    const now = this.flow.now();
    this.progressTokens = this.progressTokens === -1 ? burst : Math.min(burst, this.progressTokens + ((now - this.progressAt) / 1000) * rate);
    this.progressAt = now;
    this.progressTokens -= 1;
    if (this.progressTokens >= 0) return 'ok';
    if (kind === 'request' && this.progressTokens >= -burst) return 'refuse';
    const detail = `more than ${burst} events without progress at ${rate}/s (last: ${what})`;
    publishLimit({ sessionId: this.id, limit: 'maxNoProgressRate', action: 'terminated', detail });
    const err = new BeepFramingError(ErrorCodes.NO_PROGRESS, detail, this.decoder.offset);
    if (kind === 'frame') throw err;
    this.terminate(err);
    return 'refuse';
  }

  /** @internal True while events without progress exceed `maxNoProgressRate` (requests are refused). */
  progressExhausted(): boolean {
    if (this.progressTokens === -1) return false;
    const rate = this.limits.maxNoProgressRate;
    return this.progressTokens + ((this.flow.now() - this.progressAt) / 1000) * rate < 0;
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
  private owedOf(ch: Channel): number {
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

  /** Reconsider `ch`'s credit at the next output batch (what it owes changed). */
  private recheckCredit(ch: Channel): void {
    if (ch.state === 'closed') return;
    this.seqPending.add(ch);
    this.requestOutput();
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
   * override timeout, 0.1–1 s): the core asks its owner for a `'wakeup'`
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
      this.emit('wakeup', Math.ceil(SWS_OVERRIDE_MS - waited) + 1, ch);
    }
    return false;
  }

  /** @internal The owner's timer for a `'wakeup'` fired: look at `ch`'s output again. */
  wakeup(ch: Channel): void {
    ch.swsWakeupPending = false;
    if (ch.state === 'closed' || this.state === 'closed') return;
    this.markReady(ch);
  }

  // ------------------------------------------------------------ outbound messages (see outbound.ts)

  /** @internal Queue a whole message on `ch`. */
  queueMessage(ch: Channel, type: OutboundMessage['type'], msgno: number, ansno: number | undefined, body: string | Uint8Array | undefined, headers: EntityHeaders | undefined): OutboundMessage {
    return outbound.queueMessage(this, ch, type, msgno, ansno, body, headers);
  }

  /** @internal Send a MSG on `ch` with `sink` receiving the reply. */
  sendRequest(ch: Channel, body: BodyInit | undefined, options: RequestOptions, sink: ReplySink): PendingRequest | null {
    return outbound.sendRequest(this, ch, body, options, sink);
  }

  /** @internal Give up on a request: unsent MSGs are withdrawn, replies discarded. */
  abandon(ch: Channel, pr: PendingRequest): void {
    outbound.abandon(this, ch, pr);
  }

  // ------------------------------------------------------------ output scheduling

  /** @internal */
  markReady(ch: Channel): void {
    if (this.state === 'closed') return;
    if (ch.number !== 0) (ch.control ? this.readyControl : this.ready).add(ch);
    // Issue 17: output queued behind a closed window is owed: recharge it before the next credit.
    if (ch.send.available === 0) this.seqPending.add(ch);
    this.requestOutput();
  }

  private requestOutput(): void {
    if (this.outputRequested || this.state === 'closed') return;
    this.outputRequested = true;
    this.emit('output');
  }

  /** True when {@link pull} would return something. */
  get hasOutput(): boolean {
    return this.outputRequested;
  }

  /**
   * Take frames to write, at most about `budget` octets, as buffers for one
   * vectored write: SEQ frames first (RFC 3081 §3.1.4), then channel 0, then
   * one frame per channel round-robin. Returns `null` when nothing is ready.
   */
  pull(budget = 256 * 1024): Uint8Array[] | null {
    this.outputRequested = false;
    if (this.state === 'closed' || this.outputHeld) return null;
    const out = this.batch;
    let bytes = 0;
    // Work to do once the batch is built, in order, as (kind, object) pairs: no closure per frame.
    const after = this.afterFree.pop() ?? new AfterList();
    // Issue 17: charge what each channel owes first, so every credit below sees the session's budget.
    for (let i = 0; i < this.seqPending.size; i++) {
      const ch = this.seqPending.at(i);
      if (ch.state === 'closed') continue;
      ch.flowState.setOwed(this.owedOf(ch));
      // Nothing owed (any more): hand the profile its next MSG, if one waits (see dispatch).
      if (ch.flowState.owed === 0 && ch.active === null && ch.inQueue.length > 0) after.add(AFTER_DISPATCH, ch);
    }
    for (let i = 0; i < this.seqPending.size; i++) {
      const ch = this.seqPending.at(i);
      const u = ch.state === 'closed' ? null : ch.flowState.takeUpdate(false, ch.flowState.owed);
      if (u) {
        bytes += out.seq(ch.number, u.ackno, u.window);
        this.stats.seqOut++;
        if (diagnostics.frameOut.hasSubscribers) {
          const frame = { type: 'SEQ', channel: ch.number, ackno: u.ackno, window: u.window } as const;
          diagnostics.frameOut.publish({ sessionId: this.id, direction: 'out', frame, preview: EMPTY, ...(ch.number !== 0 ? { flow: ch.flowState.snapshot() } : {}) } satisfies FrameEvent);
        }
      }
    }
    this.seqPending.clear();
    const ch0 = this.channels.get(0) as Channel;
    while (bytes < budget && !this.outputHeld && this.canSend(ch0)) bytes += this.frameFrom(ch0, out, after);
    // Control channels next, then the rest, each set weighted round-robin.
    bytes = this.serve(this.readyControl, out, after, bytes, budget);
    bytes = this.serve(this.ready, out, after, bytes, budget);
    if (bytes >= budget && !this.outputHeld) this.requestOutput();
    this.stats.octetsOut += bytes;
    // Taken before the work below, which may (in tests) pull again.
    const batch = out.take();
    const items = after.items;
    for (let i = 0; i < after.n; i += 2) {
      const kind = items[i] as number;
      const x = items[i + 1];
      items[i + 1] = undefined;
      if (kind === AFTER_DISPATCH) this.dispatch(x as Channel);
      else if (kind === AFTER_RECHECK) this.recheckCredit(x as Channel);
      else if (kind === AFTER_DRAIN) (x as OutboundMessage).fireDrain();
      else if (kind === AFTER_DONE) (x as OutboundMessage).onDone?.();
      else this.checkQuiescent(x as Channel);
    }
    after.n = 0;
    this.afterFree.push(after);
    return batch;
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
      diagnostics.frameOut.publish({ sessionId: this.id, direction: 'out', frame: header, preview: previewOf(parts) } satisfies FrameEvent);
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

  // ------------------------------------------------------------ channel management

  private startTokens = -1;
  private startTokensAt = 0;

  /** @internal Charge one peer start to the start-rate bucket (`maxStartRate` per second, equal burst). */
  takeStartToken(): boolean {
    const rate = this.limits.maxStartRate;
    const now = this.flow.now();
    this.startTokens = this.startTokens < 0 ? rate : Math.min(rate, this.startTokens + ((now - this.startTokensAt) / 1000) * rate);
    this.startTokensAt = now;
    if (this.startTokens < 1) return false;
    this.startTokens -= 1;
    return true;
  }

  /** @internal Allocate a channel number of our parity (RFC 3080 §2.3.1.2). */
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

  /** @internal Create channel state (before the start is sent or its reply queued). */
  createChannel(number: number, state: 'starting' | 'open'): Channel {
    const ch = new Channel(this, number, state, this.flow.open());
    this.channels.set(number, ch);
    return ch;
  }

  /** @internal Bind a channel to its profile and announce it. */
  openChannel(ch: Channel, uri: string, content: Buffer | undefined, remote: boolean): void {
    ch.profile = uri;
    ch.handler = this.profiles.get(uri);
    ch.control = ch.handler?.control === true;
    ch.flowState.control = ch.control;
    ch.state = 'open';
    this.checkQuiescent(ch); // wake anyone waiting for the start to finish
    if (remote) this.emit('channel', ch);
    if (diagnostics.channelOpen.hasSubscribers) {
      diagnostics.channelOpen.publish({ sessionId: this.id, channel: ch.number, profile: uri, remote } satisfies ChannelEvent);
    }
    try {
      ch.handler?.onOpen?.(ch, content);
    } catch (err) {
      this.emit('handlerError', err);
    }
    // MSGs that arrived between the start reply and now.
    this.dispatch(ch);
  }

  /**
   * @internal Advertise a new channel's whole receive window at once (a SEQ)
   * rather than waiting for the first 4096 octets to be consumed.
   */
  announceWindow(ch: Channel): void {
    if (ch.state === 'closed' || ch.recv.size <= 4096) return;
    this.seqPending.add(ch);
    this.requestOutput();
  }

  /** @internal A start we sent was refused or failed: forget the reserved number. */
  abortStart(ch: Channel): void {
    if (ch.state !== 'starting') return;
    ch.state = 'closed';
    if (this.channels.get(ch.number) === ch) this.channels.delete(ch.number);
    this.checkQuiescent(ch);
  }

  /** @internal Was channel `n` closed lately (so a frame or close for it may have crossed ours)? */
  wasRecentlyClosed(n: number): boolean {
    return this.recentlyClosed.includes(n);
  }

  /** @internal Remove a channel, failing whatever was pending on it. */
  removeChannel(ch: Channel, err: Error | undefined): void {
    if (ch.state === 'closed') return;
    ch.state = 'closed';
    if (this.channels.get(ch.number) === ch) this.channels.delete(ch.number);
    ch.flowState.close();
    this.recentlyClosed.push(ch.number);
    if (this.recentlyClosed.length > RECENT_CLOSED) this.recentlyClosed.shift();
    this.ready.delete(ch);
    this.readyControl.delete(ch);
    this.seqPending.delete(ch);
    // The error is built only when something is pending (a quiet close is the common case).
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
    this.inboundTotal -= ch.inbound.size;
    ch.inbound.clear();
    ch.inQueue.length = 0;
    for (const out of ch.outQueue) {
      out.truncate();
      out.onFail?.(failure());
    }
    ch.outQueue.length = 0;
    for (const w of ch.quiesceWaiters) w();
    ch.quiesceWaiters = [];
    if (ch.number !== 0 && ch.profile !== undefined && diagnostics.channelClose.hasSubscribers) {
      const e = err instanceof BeepError ? { code: err.code, message: err.message } : err ? { code: ErrorCodes.CHANNEL_CLOSED, message: err.message } : undefined;
      diagnostics.channelClose.publish({ sessionId: this.id, channel: ch.number, profile: ch.profile, ...(e ? { error: e } : {}) } satisfies ChannelEvent);
    }
    ch.emit('close', err);
    try {
      ch.handler?.onClosed?.(ch, err);
    } catch (e2) {
      this.emit('handlerError', e2);
    }
  }

  /** @internal Is nothing in flight on `ch` (RFC 3080 §2.3.1.3 preconditions of `ok`)? */
  isQuiescent(ch: Channel): boolean {
    return ch.outQueue.length === 0 && ch.outstanding.size === 0 && ch.inbound.size === 0 && ch.active === null;
  }

  /** @internal Have all MSGs we sent on `ch` been acknowledged (a reply frame received)? */
  allAcknowledged(ch: Channel): boolean {
    for (const out of ch.outQueue) if (out.type === 'MSG') return false;
    for (const pr of ch.outstanding.values()) if (pr.replyKind === undefined) return false;
    return true;
  }

  /** @internal Resolve when `test(ch)` holds (re-checked on every state change of `ch`). */
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

  /** @internal */
  checkQuiescent(ch: Channel): void {
    if (ch.quiesceWaiters.length === 0) return;
    const w = ch.quiesceWaiters;
    ch.quiesceWaiters = [];
    for (const f of w) f();
  }

  /** Start a channel: see `Session.startChannel`. */
  async startChannel(
    profiles: string | readonly (string | { uri: string; content?: string | Uint8Array })[],
    options: StartChannelOptions = {},
  ): Promise<Channel> {
    await this.whenGreeted();
    return requestMgmt.start(this, profiles, options);
  }

  /** @internal Close a channel (or, for channel 0, release the session). */
  closeChannel(ch: Channel, code: number, diagnostic?: string): Promise<void> {
    if (ch.number === 0) return this.release(code, diagnostic);
    return requestMgmt.close(this, ch, code, diagnostic);
  }

  /**
   * Release the session (RFC 3080 §2.4): close every channel, then send
   * `<close number='0'>`; resolves once the peer said `<ok>`.
   */
  async release(code = 200, diagnostic?: string): Promise<void> {
    if (this.state === 'closed') {
      if (this.failure) throw this.failure;
      return;
    }
    await this.whenGreeted();
    const open = [...this.channels.values()].filter((c) => c.number !== 0 && c.state !== 'closed');
    try {
      await Promise.all(open.map((c) => c.close(code)));
    } catch (err) {
      // The peer's own release was agreed to meanwhile: released, as asked.
      if (this.released) return;
      throw err;
    }
    await requestMgmt.release(this, code, diagnostic);
  }

  /** @internal The session was released by agreement: end it cleanly. */
  finishRelease(): void {
    if (this.state === 'closed') return;
    this.released = true;
    this.gracefulEnd = true;
    this.shutdown(undefined);
  }

  /** True when the session ended by a clean release. */
  get wasReleased(): boolean {
    return this.released;
  }

  /**
   * End the session now (RFC 3080 §2.2.1.1 termination): every pending
   * operation is rejected with `err`. The glue then destroys the transport.
   */
  terminate(err: BeepError): void {
    if (this.state === 'closed') return;
    this.failure = err;
    this.shutdown(err);
  }

  /** The transport closed. Without a prior release, that terminates the session. */
  transportClosed(cause?: Error): void {
    if (this.state === 'closed') return;
    // The <ok> to our release arrived whole and is still being parsed when the
    // peer's close follows in the same turn: that is the release completing.
    if (this.releaseAcked && cause === undefined) {
      this.finishRelease();
      return;
    }
    this.terminate(
      cause instanceof BeepError
        ? cause
        : new BeepError(ErrorCodes.SESSION_CLOSED, cause ? `connection lost: ${cause.message}` : 'connection closed by the peer', { origin: 'remote', cause }),
    );
  }

  private shutdown(err: BeepError | undefined): void {
    this.state = 'closed';
    const e = err ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'session released');
    this.greetedReject(e);
    for (const ch of [...this.channels.values()]) this.removeChannel(ch, e);
    this.ready.clear();
    this.readyControl.clear();
    this.seqPending.clear();
    this.emit('close', err);
  }

  /** @internal */
  closedError(): BeepError {
    return this.failure ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'session is closed');
  }

  /** @internal */
  mgmtReplyError(msg: IncomingMessage, code: ErrorCode): Promise<BeepReplyError> {
    return replyErrorFrom(msg, code);
  }
}


/** Wrap anything thrown into a {@link BeepError}. */
export function asBeepError(err: unknown, code: ErrorCode): BeepError {
  if (err instanceof BeepError) return err;
  return new BeepError(code, err instanceof Error ? err.message : String(err), { cause: err });
}

