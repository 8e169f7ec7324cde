/**
 * The sans-IO BEEP session core: bytes in through {@link SessionCore.receive},
 * frames out through {@link SessionCore.pull}. It never touches a socket or a
 * timer; the Node glue in `session.ts` moves bytes and maps backpressure.
 *
 * `SessionCore` is a small façade over parts that each own their state:
 * `inbound.ts` (decoding and the RFC 3080 §2.2.1.1 / RFC 3081 §3.1 frame
 * checks), `dispatch.ts` (MSGs to profiles, serial per channel, RFC 3080
 * §2.6), `scheduler.ts` (which frame goes next; a batch's effects come back
 * here to be run), `lifecycle.ts` with `states.ts` (channels and the session
 * as `(state, input) → next` tables, RFC 3080 §2.3), `greeting.ts` (session
 * establishment) and the flow policy (`flow.ts`). The façade holds the
 * session's identity, release and termination.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { BeepError, BeepFramingError, BeepReplyError, ErrorCodes, type ErrorCode } from '../errors.js';
import type { EntityHeaders } from '../framing/index.js';
import { Channel, replyErrorFrom, type InboundRequest, type PendingRequest, type ReplySink, type RequestOptions } from './channel.js';
import * as outbound from './outbound.js';
import { OutboundMessage, type IncomingMessage, type BodyInit } from './message.js';
import type { RxBlock } from './rx.js';
import { requestMgmt } from './management.js';
import { SessionFlow, type MemoryPool } from './flow.js';
import { Inbound } from './inbound.js';
import { GreetingExchange } from './greeting.js';
import { Lifecycle } from './lifecycle.js';
import { RateBucket } from './guards.js';
import { nextSessionState, type SessionState } from './states.js';
import { Dispatcher } from './dispatch.js';
import { Scheduler, AfterList, AFTER_DISPATCH, AFTER_RECHECK, AFTER_DRAIN, AFTER_DONE } from './scheduler.js';
import { resolveLimits, type ChannelProfile, type ResolvedLimits, type Role, type SessionLimits, type CompatOptions, type CloseDecision, type SessionIdentity, type TransportSecurity } from './types.js';
import type { Greeting } from './mgmt.js';
import { newSessionStats, nextSessionId, publishLimit, type SessionStats } from './diagnostics.js';
import { handleOf } from './handle.js';
import { ReleaseLedger } from './release.js';

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

export type { SessionState } from './states.js';

export { SWS_OVERRIDE_MS } from './scheduler.js';

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
  /** Open channels by number, channel 0 included (the channel life cycle's table). */
  readonly channels: Map<number, Channel>;
  /** The peer's greeting, once received. */
  get peerGreeting(): Greeting | null {
    return this.greeting.peer;
  }
  /** The serverName of the first successful start (RFC 3080 §2.3.1.2). */
  serverName: string | undefined;
  state: SessionState = 'greeting';
  /** What the transport provides. */
  readonly security: TransportSecurity;
  /** The authenticated identity, once a SASL profile (or the like) established one. */
  identity: SessionIdentity | undefined;
  /** @internal Output stopped by a tuning exchange (RFC 3080 §3.1: nothing more is sent). */
  get outputHeld(): boolean {
    return this.scheduler.outputHeld;
  }
  set outputHeld(v: boolean) {
    this.scheduler.outputHeld = v;
  }
  /** @internal The positive reply to our `<close number='0'>` has fully arrived (not yet parsed). */
  releaseAcked = false;
  /** @internal Shutting down: the peer's channel starts are refused with 421. */
  draining = false;
  /** Process-unique id of the session (kept across tuning resets), as in diagnostics events and logs. */
  readonly id: number;
  /** Octets, frames, SEQs and window stalls so far (kept across tuning resets). */
  readonly stats: SessionStats;
  /** Why the session ended, if it failed. */
  failure: BeepError | undefined;
  /** @internal */ readonly options: SessionCoreOptions;
  /** @internal The receive-window policy: RTT estimate, budget, channel sizing (flow.ts). */
  readonly flow: SessionFlow;

  /** @internal Frame checks and routing of received payload (inbound.ts). */
  readonly inbound: Inbound;
  /** @internal Handing MSGs to profiles (dispatch.ts). */
  readonly dispatcher: Dispatcher;
  /** @internal Channel numbers, creation, removal, quiescence (lifecycle.ts). */
  readonly lifecycle: Lifecycle;
  /** Events without progress (`maxNoProgressRate`, issue 17). */
  private readonly progress: RateBucket;
  /** @internal The output scheduler: ready rings, batches, held output (scheduler.ts). */
  readonly scheduler: Scheduler;
  /** The greeting exchange (greeting.ts). */
  private readonly greeting: GreetingExchange;
  /**
   * @internal When tracked bodies (`RequestOptions.onReleased`) are released: the
   * transport glue seals it after each write and tells it when the write is done.
   */
  readonly releases = new ReleaseLedger((err) => this.emit('handlerError', err));
  /** Spare lists for pull()'s deferred work (reused; a second one if pull() is re-entered). */
  private readonly afterFree: AfterList[] = [];
  /** @internal Called, before any `'output'` listener, when there are frames to pull (set by the transport glue). */
  onOutput: (() => void) | null = null;
  /** When the session ends, let queued output drain and end the transport (rather than destroy it). */
  gracefulEnd = false;
  private released = false;

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
    this.scheduler = new Scheduler(this.limits, this.stats, this.flow, this.id, {
      output: () => {
        // The glue's hook first (a plain call: `emit` makes an array per call), then any listeners.
        this.onOutput?.();
        if (this.listenerCount('output') > 0) this.emit('output');
      },
      wakeup: (ms, ch) => this.emit('wakeup', ms, ch),
    });
    for (const p of options.profiles ?? []) {
      if (this.profiles.has(p.uri)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `profile ${p.uri} registered twice`);
      this.profiles.set(p.uri, p);
    }
    this.greeting = new GreetingExchange(this);
    this.dispatcher = new Dispatcher(this, this.scheduler);
    this.lifecycle = new Lifecycle(this, this.profiles, this.scheduler, this.dispatcher);
    this.channels = this.lifecycle.channels;
    this.progress = new RateBucket(this.limits.maxNoProgressRate, 5 * this.limits.maxNoProgressRate);
    this.inbound = new Inbound(this, this.channels, this.scheduler, this.dispatcher, options.compat);
    const ch0 = new Channel(this, 0, 'open', this.flow.open(false));
    ch0.profile = 'beep:channel-management';
    this.channels.set(0, ch0);
    // The peer's greeting is a reply to a MSG 0 nobody sent (RFC 3080 §2.2.1.1,
    // "except during session establishment").
    ch0.outstanding.set(0, {
      msgno: 0,
      out: null,
      sink: this.greeting.sink(),
      replyKind: undefined,
      reply: null,
      answers: null,
      abandoned: false,
    });
    this.greeting.send(ch0);
  }

  /** @internal True while part of a frame has been read and the rest has not (slow-loris watch). */
  get midFrame(): boolean {
    return this.inbound.midFrame;
  }

  /** True once the session has ended (released or terminated). */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Resolves with the peer's greeting; rejects if the session ends first or is refused. */
  whenGreeted(): Promise<Greeting> {
    return this.greeting.promise;
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
    this.scheduler.releaseOutput();
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

  /** @internal The peer's greeting was read (greeting.ts): the session is open. */
  greeted(g: Greeting): void {
    this.state = nextSessionState(this.state, 'greeted') ?? this.state;
    this.emit('greeting', g);
  }

  // ------------------------------------------------------------ inbound path

  /**
   * Feed octets read from the transport. Never throws: a poorly-formed frame
   * terminates the session (RFC 3080 §2.2.1.1) and emits `close` with the error.
   */
  receive(chunk: Uint8Array, block: RxBlock | null = null): void {
    if (this.state === 'closed') return;
    try {
      this.inbound.receive(chunk, block);
    } catch (err) {
      this.terminate(asBeepError(err, ErrorCodes.PROTOCOL));
    }
  }

  // ------------------------------------------------------------ hostile peers (issue 17, spec/limits.md)

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
    const left = this.progress.charge(this.flow.now());
    if (left >= 0) return 'ok';
    if (kind === 'request' && left >= -burst) return 'refuse';
    const detail = `more than ${burst} events without progress at ${rate}/s (last: ${what})`;
    publishLimit({ sessionId: this.id, limit: 'maxNoProgressRate', action: 'terminated', detail });
    const err = new BeepFramingError(ErrorCodes.NO_PROGRESS, detail, this.inbound.offset);
    if (kind === 'frame') throw err;
    this.terminate(err);
    return 'refuse';
  }

  /** @internal True while events without progress exceed `maxNoProgressRate` (requests are refused). */
  progressExhausted(): boolean {
    return this.progress.level(this.flow.now()) < 0;
  }

  // ------------------------------------------------------------ outbound messages (see outbound.ts)

  /** @internal Queue a whole message on `ch`. */
  queueMessage(ch: Channel, type: OutboundMessage['type'], msgno: number, ansno: number | undefined, body: string | Uint8Array | undefined, headers: EntityHeaders | undefined): OutboundMessage {
    return outbound.queueMessage(this, ch, type, msgno, ansno, body, headers);
  }

  /** @internal Send a MSG on `ch` with `sink` receiving the reply (`record`: the pending-request record to register, if the caller made one). */
  sendRequest(ch: Channel, body: BodyInit | undefined, options: RequestOptions, sink: ReplySink, record?: PendingRequest): PendingRequest | null {
    return outbound.sendRequest(this, ch, body, options, sink, record);
  }

  /** @internal Give up on a request: unsent MSGs are withdrawn, replies discarded. */
  abandon(ch: Channel, pr: PendingRequest): void {
    outbound.abandon(this, ch, pr);
  }

  // ------------------------------------------------------------ output (scheduler.ts)

  /** @internal The owner's timer for a `'wakeup'` fired: look at `ch`'s output again. */
  wakeup(ch: Channel): void {
    this.scheduler.wakeup(ch);
  }

  /** True when {@link pull} would return something. */
  get hasOutput(): boolean {
    return this.scheduler.hasOutput;
  }

  /**
   * Take frames to write, at most about `budget` octets, as buffers for one
   * vectored write: SEQ frames first (RFC 3081 §3.1.4), then channel 0, then
   * one frame per channel round-robin. Returns `null` when nothing is ready.
   */
  pull(budget = 256 * 1024): Uint8Array[] | null {
    // Work the batch leaves to do, as (kind, object) pairs: no closure per frame.
    const after = this.afterFree.pop() ?? new AfterList();
    // Taken before the work below, which may (in tests) pull again.
    const batch = this.scheduler.pull(budget, this.channels.get(0) as Channel, after);
    const items = after.items;
    for (let i = 0; i < after.n; i += 2) {
      const kind = items[i] as number;
      const x = items[i + 1];
      items[i + 1] = undefined;
      if (kind === AFTER_DISPATCH) this.dispatcher.dispatch(x as Channel);
      else if (kind === AFTER_RECHECK) this.scheduler.recheckCredit(x as Channel);
      else if (kind === AFTER_DRAIN) (x as OutboundMessage).fireDrain();
      else if (kind === AFTER_DONE) {
        this.messageOut(x as OutboundMessage);
        OutboundMessage.recycle(x as OutboundMessage); // if nothing but the core held it
      }
      else this.lifecycle.checkQuiescent(x as Channel);
    }
    after.n = 0;
    this.afterFree.push(after);
    return batch;
  }

  /** `out`'s final frame went out: its waiters, then the MSG it replies to (see Dispatcher.replyDone). */
  private messageOut(out: OutboundMessage): void {
    out.onDone?.();
    out.resolveDone?.();
    const im = out.completes as InboundRequest | undefined;
    if (im === undefined) return;
    const ch = this.channels.get(im.msg.channel);
    if (ch !== undefined) this.dispatcher.replyDone(ch, im);
  }

  // ------------------------------------------------------------ channel management

  /** @internal Is nothing in flight on `ch` (RFC 3080 §2.3.1.3 preconditions of `ok`)? */
  isQuiescent(ch: Channel): boolean {
    return this.lifecycle.isQuiescent(ch);
  }

  /** @internal Resolve when `test(ch)` holds (re-checked on every state change of `ch`). */
  waitFor(ch: Channel, test: (ch: Channel) => boolean): Promise<void> {
    return this.lifecycle.waitFor(ch, test);
  }

  /** Start a channel: see `Session.startChannel`. */
  startChannel(
    profiles: string | readonly (string | { uri: string; content?: string | Uint8Array })[],
    options: StartChannelOptions = {},
  ): Promise<Channel> {
    // Greeted already (the common case): no extra turn.
    if (this.state === 'open') return requestMgmt.start(this, profiles, options);
    return this.whenGreeted().then(() => requestMgmt.start(this, profiles, options));
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
    this.state = nextSessionState(this.state, 'end') ?? 'closed';
    this.scheduler.close();
    const e = err ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'session released');
    this.greeting.fail(e);
    for (const ch of [...this.channels.values()]) this.lifecycle.removeChannel(ch, e);
    this.scheduler.clear();
    this.emit('close', err);
  }

  /** @internal The first successful start names the server for the session (RFC 3080 §2.3.1.2). */
  adoptServerName(name: string | undefined): void {
    if (this.serverName === undefined && name !== undefined) this.serverName = name;
  }

  /** @internal The positive reply to our `<close number='0'>` has fully arrived (it is parsed next). */
  releaseReplyArrived(): void {
    this.releaseAcked = true;
  }

  /** @internal We agreed to the peer's release: exchanges in flight finish, nothing new starts (RFC 3080 §2.3.1.3). */
  releaseAgreed(): void {
    const next = nextSessionState(this.state, 'releaseAgreed');
    if (next !== null) this.state = next;
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

