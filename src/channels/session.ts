/**
 * Node glue: a {@link Session} runs a {@link SessionCore} over a socket,
 * moving bytes both ways and mapping backpressure (socket `write()` returning
 * false stops pulling frames until `drain`). {@link connect} and
 * {@link createServer} are the entry points.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import type { Channel } from './channel.js';
import { SessionCore, type SessionCoreOptions, type StartChannelOptions } from './core.js';
import type { Greeting } from './mgmt.js';
import type { Role, TransportSecurity } from './types.js';
import { diagnostics, newSessionStats, nextSessionId, publishLimit, type SessionStats } from './diagnostics.js';
import { MemoryPool } from './flow.js';
import { attachGlue, handleOf, type SessionHandle } from './handle.js';
import { createListener, describeTransport, dial, formatTarget, listen as bindListener, readInto, type ListenAddress, type ListenTarget, type TransportInfo } from '../transports/index.js';
import { RxBuffers, type RxBlock } from './rx.js';

/** Options shared by {@link connect} and {@link createServer}. */
export type SessionOptions = Omit<SessionCoreOptions, 'role'>;

/**
 * Octets queued in the transport's own buffer before the session stops
 * pulling frames and waits for `'drain'`. It bounds how long a control frame
 * can wait behind bulk frames already handed to the transport (1 MiB: about
 * a millisecond on loopback, 8 ms at 1 Gbit/s).
 */
const OUTPUT_HIGH_WATER = 1024 * 1024;

const RESOLVED = Promise.resolve();
/** Written after a corked batch that carried tracked body octets: its callback is the batch's. */
const EMPTY = Buffer.alloc(0);

/** Events of a {@link Session}. */
export interface SessionEvents {
  /** The peer started a channel. */
  channel: [channel: Channel];
  /** The session is over and its transport closed; `error` is set unless it was released cleanly. */
  close: [error: BeepError | undefined];
  /** A profile handler threw or rejected; the session carries on. */
  handlerError: [error: unknown];
  /** A tuning reset completed: a fresh session state over the new transport (greetings under way); its handle. */
  tuned: [session: SessionHandle];
}

/**
 * A BEEP session over a stream transport (TCP, or TLS after tuning).
 */
export class Session extends EventEmitter<SessionEvents> {
  /** @internal Protocol state; replaced on a tuning reset (profiles and applications use {@link handle}). */
  core: SessionCore;
  /** The transport. */
  socket: Duplex;
  readonly role: Role;
  private options: SessionOptions;
  private flushScheduled = false;
  private readonly flushTask = (): void => this.flush();
  private waitingDrain = false;
  private transportClosed = false;
  private readonly closed: Promise<void>;
  private detach: () => void = () => undefined;
  /** Process-unique id (as in diagnostics events and logs); kept across tuning. */
  readonly id: number = nextSessionId();
  /** Counters, kept across tuning resets. */
  readonly stats: SessionStats = newSessionStats();
  /** `host:port` of the peer, when the transport is a socket. */
  readonly remote: string | undefined;
  /** The transport stream the session began on (kept across tuning; see {@link transport}). */
  private readonly rawTransport: Duplex;
  private readonly openedAt = Date.now();
  private greetingFrom = Date.now();
  // Watchdog state (greeting, idle, frame and write-stall timeouts): one timer, re-armed lazily.
  private watchdog: NodeJS.Timeout | null = null;
  private watchdogAt = Infinity;
  private lastReceived = Date.now();
  private frameStarted = -1;
  /** @internal The reused receive memory, when the transport reads into it (null: `'data'` events). */
  rx: RxBuffers | null = null;
  private stallStarted = -1;

  constructor(socket: Duplex, role: Role, options: SessionOptions = {}) {
    super();
    this.socket = socket;
    this.rawTransport = socket;
    this.role = role;
    // A copy: a tuning reset changes this session's options, never the server's.
    this.options = { ...options };
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.remote = endpointOf(socket, 'remote');
    this.core = this.buildCore();
    this.attach(socket);
    if (diagnostics.sessionOpen.hasSubscribers) {
      const local = endpointOf(socket, 'local');
      diagnostics.sessionOpen.publish({ sessionId: this.id, role, ...(local ? { local } : {}), ...(this.remote ? { remote: this.remote } : {}) });
    }
    this.armWatchdog(Date.now());
  }

  /** Arm the watchdog for the earliest deadline, unless it is due sooner already. */
  private armWatchdog(now: number): void {
    if (this.transportClosed || this.core.state === 'closed') return;
    const at = this.nextDeadline(now);
    if (at >= this.watchdogAt || at === Infinity) return;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdogAt = at;
    this.watchdog = setTimeout(() => this.onWatchdog(), Math.max(0, at - now) + 1);
    this.watchdog.unref();
  }

  private nextDeadline(now: number): number {
    const l = this.core.limits;
    let at = Infinity;
    if (this.core.peerGreeting === null) at = Math.min(at, this.greetingFrom + l.greetingTimeout);
    if (this.core.channels.size <= 1) at = Math.min(at, this.lastReceived + l.idleTimeout);
    else if (Number.isFinite(l.idleTimeout)) at = Math.min(at, now + l.idleTimeout);
    if (this.frameStarted >= 0) at = Math.min(at, this.frameStarted + l.frameTimeout);
    if (this.stallStarted >= 0) at = Math.min(at, this.stallStarted + l.writeStallTimeout);
    return at;
  }

  private onWatchdog(): void {
    this.watchdog = null;
    this.watchdogAt = Infinity;
    if (this.transportClosed || this.core.state === 'closed') return;
    const now = Date.now();
    const l = this.core.limits;
    let hit: [limit: string, detail: string] | null = null;
    if (this.core.peerGreeting === null && now >= this.greetingFrom + l.greetingTimeout) hit = ['greetingTimeout', `no greeting within ${l.greetingTimeout} ms`];
    else if (this.frameStarted >= 0 && now >= this.frameStarted + l.frameTimeout) hit = ['frameTimeout', `a frame took longer than ${l.frameTimeout} ms to arrive`];
    else if (this.stallStarted >= 0 && now >= this.stallStarted + l.writeStallTimeout) hit = ['writeStallTimeout', `the peer read nothing for ${l.writeStallTimeout} ms`];
    else if (this.core.channels.size <= 1 && now >= this.lastReceived + l.idleTimeout) hit = ['idleTimeout', `idle for ${l.idleTimeout} ms`];
    if (!hit) return this.armWatchdog(now);
    publishLimit({ sessionId: this.id, ...(this.remote ? { remote: this.remote } : {}), limit: hit[0], action: 'terminated', detail: hit[1] });
    this.destroy(new BeepError(ErrorCodes.LIMIT, `session terminated: ${hit[1]} (${hit[0]})`));
  }

  private buildCore(): SessionCore {
    const core = new SessionCore({ ...this.options, role: this.role, id: this.id, stats: this.stats });
    core.owner = this;
    attachGlue(core, this);
    core.onOutput = () => this.scheduleFlush();
    // Replies queued by the handlers of one read go out when the last of them has run.
    core.dispatcher.afterRun = () => {
      if (this.flushScheduled && core === this.core) this.flush();
    };
    // RFC 1122's override timeout for a send window held back by silly-window avoidance.
    core.on('wakeup', (ms: number, ch: Channel) => setTimeout(() => core.wakeup(ch), ms).unref());
    core.on('channel', (ch) => this.emit('channel', ch));
    core.on('handlerError', (err) => this.emit('handlerError', err));
    core.on('close', (err) => {
      if (core !== this.core) return;
      if (err && !core.gracefulEnd) {
        // RFC 3080 §2.2.1.1: terminated "without generating a response"; RFC 3081
        // §2: a session is terminated by a TCP ABORT (RST), not a CLOSE.
        abort(this.socket);
      } else {
        this.flush();
        this.socket.end();
        // Liberal: some peers (beepcore-java) never issue their TCP CLOSE after a release
        // (RFC 3081 §2.2); once our FIN is out, give them 2 s, then drop the transport.
        const s = this.socket;
        s.once('finish', () => {
          const t = setTimeout(() => s.destroy(), 2000);
          t.unref();
          s.once('close', () => clearTimeout(t));
        });
      }
    });
    // The greeting was queued in the constructor, before our listener existed.
    this.scheduleFlush();
    return core;
  }

  private attach(socket: Duplex): void {
    if (socket instanceof net.Socket) socket.setNoDelay(true);
    const onData = (chunk: Buffer, block: RxBlock | null = null): void => {
      const now = Date.now();
      this.lastReceived = now;
      this.core.receive(chunk, block);
      if (!this.core.midFrame) this.frameStarted = -1;
      else if (this.frameStarted < 0) {
        this.frameStarted = now;
        this.armWatchdog(now);
      }
    };
    // Reads go into reused memory where the socket allows it (see rx.ts), else 'data' events.
    let attached = true;
    const rx = socket instanceof net.Socket ? new RxBuffers() : null;
    this.rx = rx !== null && readInto(socket, { buffer: rx.next, callback: (n) => void (attached && onData(rx.landed(n), rx.current)) }) ? rx : null;
    if (this.rx !== null) socket.resume();
    else socket.on('data', onData);
    const onEnd = (): void => {
      // The peer will send nothing more. After a release that is expected.
      if (this.core.state !== 'closed') this.core.transportClosed();
      socket.end();
    };
    const onError = (err: Error): void => {
      this.core.transportClosed(new BeepError(ErrorCodes.TRANSPORT, `transport error: ${err.message}`, { cause: err, origin: 'remote' }));
    };
    const core = this.core;
    const onClose = (): void => {
      this.transportClosed = true;
      // Nothing can be in flight any more: every tracked body octet is released.
      core.releases.transportClosed();
      if (this.watchdog) clearTimeout(this.watchdog);
      this.watchdog = null;
      this.core.transportClosed();
      if (diagnostics.sessionClose.hasSubscribers) {
        const f = this.core.failure;
        diagnostics.sessionClose.publish({
          sessionId: this.id,
          role: this.role,
          ...(this.remote ? { remote: this.remote } : {}),
          ...(f ? { error: { code: f.code, message: f.message } } : {}),
          stats: { ...this.stats },
          durationMs: Date.now() - this.openedAt,
        });
      }
      this.emit('close', this.core.failure);
    };
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.detach = () => {
      attached = false;
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain) return;
    this.flushScheduled = true;
    // Inside the dispatcher's run of handlers: flushed once they have run (afterRun), no microtask.
    // (`core` is unset while the first one is being built.)
    if ((this.core as SessionCore | undefined)?.dispatcher.running === true) return;
    // A microtask, so everything this turn produces goes out in one write (no closure or
    // AsyncResource per call, as queueMicrotask would make).
    void RESOLVED.then(this.flushTask);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.waitingDrain || this.transportClosed || this.socket.destroyed) return;
    const socket = this.socket;
    // Everything this turn produced goes out in one vectored write
    // (cork/uncork makes net use writev): also a SEQ that a reply's departure
    // made due, e.g. a new channel's window right after its start reply. A
    // lone buffer is written as it is (a corked write costs Node a writev
    // request and its array).
    let first: Uint8Array | undefined;
    let corked = false;
    try {
      for (;;) {
        // Our own threshold, not the socket's 16 KiB mark: a corked batch is
        // larger than that, and waiting for 'drain' after every batch costs an
        // event per frame. Past the threshold, wait until the socket drained.
        if (socket.writableLength >= OUTPUT_HIGH_WATER) {
          this.waitForDrain();
          return;
        }
        const pulled = this.core.pull();
        if (!pulled) return;
        // Frames arrive joined already (see FrameBatch): short pieces in one buffer.
        if (!corked && first === undefined && pulled.length === 1) {
          first = pulled[0];
          continue;
        }
        if (!corked) {
          socket.cork();
          corked = true;
          if (first !== undefined) socket.write(first);
          first = undefined;
        }
        for (const b of pulled) socket.write(b);
      }
    } finally {
      // Tracked bodies (RequestOptions.onReleased): released once this write completes.
      const released = this.core.releases.due ? this.core.releases.seal(first !== undefined || corked) : undefined;
      if (first !== undefined) socket.write(first, released);
      else if (released !== undefined) socket.write(EMPTY, released);
      if (corked) socket.uncork();
    }
  }

  private waitForDrain(): void {
    this.waitingDrain = true;
    this.stallStarted = Date.now();
    this.armWatchdog(this.stallStarted);
    this.socket.once('drain', () => {
      this.waitingDrain = false;
      this.stallStarted = -1;
      this.flush();
    });
  }

  /** The transport the session runs over (kind, ends), when the transport layer knows it; kept across tuning. */
  get transport(): TransportInfo | undefined {
    return describeTransport(this.rawTransport);
  }

  /** The typed handle of the current session state (what profiles see as `channel.session`). */
  get handle(): SessionHandle {
    return handleOf(this.core);
  }

  /** The peer's greeting (after {@link connect} resolves, always present). */
  get peerGreeting(): Greeting | null {
    return this.core.peerGreeting;
  }

  /** Profile URIs the peer advertised. */
  get peerProfiles(): string[] {
    return this.core.peerGreeting?.profiles ?? [];
  }

  /** Open channels, channel 0 included. */
  get channels(): ReadonlyMap<number, Channel> {
    return this.core.channels;
  }

  /** Resolves with the peer's greeting. */
  whenGreeted(): Promise<Greeting> {
    return this.core.whenGreeted();
  }

  /**
   * Start a channel (RFC 3080 §2.3.1.2) offering one or more profiles, in order
   * of preference. `content` is piggybacked to each profile (CDATA, or base64
   * for binary); the peer's piggybacked answer is on `channel.startContent`.
   * A refusal rejects with `BeepReplyError` (`BEEP_ERR_START_REFUSED`).
   */
  startChannel(
    profiles: string | readonly (string | { uri: string; content?: string | Uint8Array })[],
    options: StartChannelOptions = {},
  ): Promise<Channel> {
    return this.core.startChannel(profiles, options);
  }

  /**
   * Release the session (RFC 3080 §2.4): close every channel, then channel 0,
   * then the transport. Rejects if the peer declines (the session stays up).
   */
  async close(code = 200, diagnostic?: string): Promise<void> {
    await this.core.release(code, diagnostic);
    await this.closed;
  }

  /** Terminate at once: the transport is destroyed and everything pending rejects with `err`. */
  destroy(err?: Error): void {
    this.core.terminate(err instanceof BeepError ? err : new BeepError(ErrorCodes.SESSION_CLOSED, err?.message ?? 'session destroyed locally', { cause: err }));
    abort(this.socket);
  }

  /** Resolves once the transport has closed. */
  whenClosed(): Promise<void> {
    return this.closed;
  }

  /**
   * Tuning (RFC 3080 §3): stop reading the transport, hand it to `wrap` (e.g.
   * a TLS handshake over it), then reset onto what `wrap` returns and greet
   * again. Call it once nothing more is to be sent on the old state (the
   * channel layer holds output after a tuning reply). A failing `wrap`
   * terminates the session with its error.
   */
  async upgrade(wrap: (raw: Duplex) => Promise<{ socket: Duplex; security: TransportSecurity }>): Promise<void> {
    const raw = this.socket;
    this.detach();
    let result: { socket: Duplex; security: TransportSecurity };
    try {
      result = await wrap(raw);
    } catch (err) {
      const e = err instanceof BeepError ? err : new BeepError(ErrorCodes.TRANSPORT, `transport tuning failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.core.terminate(e);
      this.core.releases.retire();
      raw.destroy();
      this.emit('close', e);
      throw e;
    }
    this.resetTransport(result.socket, { security: result.security });
    if (diagnostics.sessionTuned.hasSubscribers) {
      const sec = result.security;
      diagnostics.sessionTuned.publish({
        sessionId: this.id,
        tls: sec.tls,
        ...(sec.protocol ? { protocol: sec.protocol } : {}),
        ...(sec.cipher ? { cipher: sec.cipher } : {}),
        ...(sec.peerCommonName ? { peerCommonName: sec.peerCommonName } : {}),
        ...(sec.pskIdentity ? { pskIdentity: sec.pskIdentity } : {}),
      });
    }
    this.emit('tuned', this.handle);
  }

  /**
   * Tuning reset (RFC 3080 §3): discard every channel and the session state,
   * switch to `transport` (e.g. a TLS socket wrapping the old one), and greet
   * again. Pending work on the old state is rejected with `BEEP_ERR_SESSION_CLOSED`.
   */
  resetTransport(transport: Duplex, options: Partial<SessionOptions> = {}): void {
    const old = this.core;
    this.detach();
    this.options = { ...this.options, ...options };
    this.socket = transport;
    this.waitingDrain = false;
    this.stallStarted = -1;
    this.frameStarted = -1;
    this.flushScheduled = false;
    this.core = this.buildCore();
    old.terminate(new BeepError(ErrorCodes.SESSION_CLOSED, 'session reset by transport tuning'));
    // Its writes in flight still complete on the old transport; nothing more goes through it.
    old.releases.retire();
    this.attach(transport);
    this.greetingFrom = Date.now();
    this.armWatchdog(this.greetingFrom);
  }
}

/** `host:port` of one end of a socket transport (IPv6 in brackets). */
function endpointOf(socket: Duplex, end: 'local' | 'remote'): string | undefined {
  if (!(socket instanceof net.Socket)) return undefined;
  const a = end === 'local' ? socket.localAddress : socket.remoteAddress;
  const p = end === 'local' ? socket.localPort : socket.remotePort;
  if (a === undefined || p === undefined) return undefined;
  return a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`;
}

/** TCP ABORT where the transport is a TCP socket; a plain destroy otherwise. */
function abort(socket: Duplex): void {
  // A TLS socket has no TCP handle of its own to reset: destroy it (its TCP socket goes with it).
  if (socket instanceof net.Socket && !(socket instanceof tls.TLSSocket) && !socket.destroyed && socket.readyState === 'open') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      /* fall through */
    }
  }
  socket.destroy();
}

/** Options of {@link connect}. */
export interface ConnectOptions extends SessionOptions {
  /** TCP: host to connect to (default 127.0.0.1). */
  host?: string;
  /** TCP: port to connect to (required unless `path` is given). */
  port?: number;
  /** A Unix domain socket path to connect to instead of TCP. */
  path?: string;
  /** Abort the connection attempt and the wait for the greeting. */
  signal?: AbortSignal;
  /** Milliseconds allowed to connect and receive the greeting (default 30000). */
  timeout?: number;
}

/**
 * Connect to a BEEP listener as the initiator and wait for its greeting. A
 * refusal in the greeting rejects with `BEEP_ERR_SESSION_REFUSED`.
 */
export function connect(options: ConnectOptions): Promise<Session> {
  const { host = '127.0.0.1', port, path, signal, timeout = 30000, ...rest } = options;
  return new Promise<Session>((resolve, reject) => {
    if (signal?.aborted) return reject(new BeepError(ErrorCodes.ABORTED, 'connect aborted', { cause: signal.reason }));
    const target = path !== undefined ? { path } : { host, port: port as number };
    const where = formatTarget(target);
    let socket: Duplex;
    try {
      socket = dial(target);
    } catch (err) {
      // A Node error (e.g. a host of the wrong type) is wrapped, its cause kept.
      return reject(err instanceof BeepError ? err : new BeepError(ErrorCodes.TRANSPORT, `cannot connect to ${where}: ${(err as Error).message}`, { cause: err }));
    }
    const session = new Session(socket, 'initiator', rest);
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        session.destroy(err);
        reject(err);
      } else resolve(session);
    };
    const onAbort = (): void => finish(new BeepError(ErrorCodes.ABORTED, 'connect aborted', { cause: signal?.reason }));
    const timer = setTimeout(() => finish(new BeepError(ErrorCodes.TRANSPORT, `no greeting from ${where} within ${timeout} ms`)), timeout);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (err) => finish(new BeepError(ErrorCodes.TRANSPORT, `cannot connect to ${where}: ${err.message}`, { cause: err })));
    session.whenGreeted().then(() => finish(null), (err: Error) => finish(err));
  });
}

/** Options of {@link createServer}. */
export interface ServerOptions extends SessionOptions {
  /**
   * Most sessions at once (default 1000). Connections beyond it are refused
   * in the greeting with 421 (RFC 3080 §2.4); beyond it plus 64 they are
   * reset without a greeting.
   */
  maxSessions?: number;
  /** Most sessions at once from one remote address (default 64); beyond it, 421 in the greeting. */
  maxSessionsPerAddress?: number;
  /**
   * Memory all sessions together may be made to hold by their peers (octets,
   * default 128 MiB; issue 17): windows granted, octets unconsumed, replies
   * owed and not sendable — each session's `sessionMemoryBudget` counted
   * against one listener-wide pool. Once spent, channels are credited no more
   * than RFC 3081's initial 4096 octets: every session keeps moving, slowly.
   */
  memoryBudget?: number;
}

/** Default listener-wide memory budget (octets). */
export const DEFAULT_MEMORY_BUDGET = 128 * 1024 * 1024;

/** Connections answered with a 421 greeting beyond `maxSessions`, before they are simply reset. */
const REFUSAL_SLACK = 64;

/** Events of a {@link BeepServer}. */
export interface ServerEvents {
  /** A connection was accepted and its session started (greeting sent). */
  session: [session: Session];
  /**
   * The listening socket failed after {@link BeepServer.listen} resolved (a failure to
   * listen rejects that promise instead). Emitted only when a listener is registered, so
   * an unobserved socket error never crashes the process.
   */
  error: [error: BeepError];
}

/**
 * A BEEP listener: one {@link Session} per accepted TCP connection, each
 * isolated (a failing session never affects another).
 */
export class BeepServer extends EventEmitter<ServerEvents> {
  readonly server: net.Server;
  /** Sessions served now (refused connections are not counted). */
  readonly sessions = new Set<Session>();
  private readonly options: SessionOptions;
  private readonly maxSessions: number;
  private readonly maxPerAddress: number;
  private readonly perAddress = new Map<string, number>();
  private refusing = 0;
  private closing = false;
  /** Memory held by all sessions because of their peers (see `memoryBudget`). */
  readonly memory: MemoryPool;
  /** A listen() is in progress (its promise reports socket errors). */
  private listenPending = false;

  constructor(options: ServerOptions = {}) {
    super();
    const { maxSessions = 1000, maxSessionsPerAddress = 64, memoryBudget = DEFAULT_MEMORY_BUDGET, ...sessionOptions } = options;
    if (!(memoryBudget > 0)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'memoryBudget must be a positive number');
    for (const [k, v] of [['maxSessions', maxSessions], ['maxSessionsPerAddress', maxSessionsPerAddress]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `${k} must be a positive integer`);
    }
    // Issue 17: one pool bounds what all sessions hold together.
    this.memory = new MemoryPool(memoryBudget);
    this.options = { memoryPool: this.memory, ...sessionOptions };
    this.maxSessions = maxSessions;
    this.maxPerAddress = maxSessionsPerAddress;
    this.server = createListener((socket) => this.accept(socket));
    // While listen() is pending it reports the error itself; later ones go to our 'error'
    // listeners, if any (an EventEmitter 'error' with no listener would throw).
    this.server.on('error', (err) => {
      if (this.listenPending || this.listenerCount('error') === 0) return;
      const a = this.server.address();
      const where = typeof a === 'string' ? `unix:${a}` : a ? `${a.address}:${a.port}` : '';
      this.emit('error', new BeepError(ErrorCodes.TRANSPORT, `listener ${where} failed: ${err.message}`, { cause: err }));
    });
  }

  private accept(socket: Duplex): void {
    const t = describeTransport(socket);
    const address = t?.remoteAddress ?? t?.kind ?? '?';
    const remote = endpointOf(socket, 'remote');
    const count = this.perAddress.get(address) ?? 0;
    let refusal: string | null = null;
    let limit = '';
    if (this.closing) [limit, refusal] = ['shutdown', 'server shutting down'];
    else if (this.sessions.size >= this.maxSessions) [limit, refusal] = ['maxSessions', `too many sessions (limit ${this.maxSessions})`];
    else if (count >= this.maxPerAddress) [limit, refusal] = ['maxSessionsPerAddress', `too many sessions from ${address} (limit ${this.maxPerAddress})`];
    if (refusal !== null) {
      if (this.refusing >= REFUSAL_SLACK) {
        publishLimit({ ...(remote ? { remote } : {}), limit, action: 'terminated', detail: `${refusal}; connection reset without a greeting` });
        abort(socket);
        return;
      }
      publishLimit({ ...(remote ? { remote } : {}), limit, action: 'refused', code: 421, detail: refusal });
      // RFC 3080 §2.4: a listener may refuse a session by answering the greeting with an error.
      this.refusing++;
      const refused = new Session(socket, 'listener', { ...this.options, refuse: { code: 421, diagnostic: refusal } });
      refused.on('close', () => this.refusing--);
      return;
    }
    const session = new Session(socket, 'listener', this.options);
    this.sessions.add(session);
    this.perAddress.set(address, count + 1);
    session.on('close', () => {
      this.sessions.delete(session);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
    this.emit('session', session);
  }

  /**
   * Listen on `host:port` (defaults 127.0.0.1:10288; port 0 picks a free one). Rejects with a
   * {@link BeepError} of code `BEEP_ERR_LISTEN` naming the address and the reason (address in
   * use, not available, host not found, permission, bad port), the Node error as its `cause`.
   */
  listen(port?: number, host?: string): Promise<net.AddressInfo>;
  /** Listen on a Unix domain socket `path` (refused if the path exists), or on TCP `{ host, port }`. */
  listen(target: ListenTarget): Promise<ListenAddress>;
  async listen(portOrTarget: number | ListenTarget = 10288, host = '127.0.0.1'): Promise<net.AddressInfo | ListenAddress> {
    const target: ListenTarget = typeof portOrTarget === 'object' ? portOrTarget : { port: portOrTarget, host };
    this.listenPending = true;
    try {
      const a = await bindListener(this.server, target);
      return typeof portOrTarget === 'object' || a.kind === 'unix' ? a : { address: a.address, family: a.family, port: a.port };
    } finally {
      this.listenPending = false;
    }
  }

  /** The bound address, once listening. */
  address(): net.AddressInfo | null {
    return this.server.address() as net.AddressInfo | null;
  }

  /**
   * Graceful shutdown: stop accepting connections (a connection that races
   * the close gets 421 in the greeting), refuse new channel starts with 421,
   * let the exchanges in flight finish, then release every session (RFC 3080
   * §2.4). A session still busy, or whose peer declines the release, when
   * `graceMs` (default 5000) runs out is terminated.
   */
  async close(graceMs = 5000): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    await Promise.all([...this.sessions].map((s) => drainSession(s, deadline)));
    await stopped;
  }
}

/** Resolve with `p`'s outcome, or `false` once `ms` have passed (the timer is always cleared). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))))]);
  } finally {
    clearTimeout(timer);
  }
}

async function drainSession(s: Session, deadline: number): Promise<void> {
  const core = s.core;
  core.draining = true;
  const left = (): number => deadline - Date.now();
  const busy = [...core.channels.values()].filter((c) => c.number !== 0);
  await within(Promise.all(busy.map((c) => core.waitFor(c, (x) => core.isQuiescent(x)))), left());
  while (left() > 0 && !s.core.isClosed) {
    try {
      if (await within(s.close(421, 'server shutting down'), left())) return;
    } catch {
      // Declined (an exchange crossed the close): try again shortly.
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(100, left()))));
    }
  }
  if (!s.core.isClosed) s.destroy(new BeepError(ErrorCodes.SESSION_CLOSED, 'server shutting down: grace period over'));
}

/** Create a BEEP listener serving `options.profiles`. */
export function createServer(options: ServerOptions = {}): BeepServer {
  return new BeepServer(options);
}
