/**
 * Node glue: a {@link Session} runs a {@link SessionCore} over a socket,
 * moving bytes both ways and mapping backpressure (socket `write()` returning
 * false stops pulling frames until `drain`). {@link connect} and
 * {@link createServer} are the entry points.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import type { Channel } from './channel.js';
import { SessionCore, type SessionCoreOptions, type StartChannelOptions } from './core.js';
import type { Greeting } from './mgmt.js';
import type { Role, TransportSecurity } from './types.js';

/** Options shared by {@link connect} and {@link createServer}. */
export type SessionOptions = Omit<SessionCoreOptions, 'role'>;

/** Events of a {@link Session}. */
export interface SessionEvents {
  /** The peer started a channel. */
  channel: [channel: Channel];
  /** The session is over and its transport closed; `error` is set unless it was released cleanly. */
  close: [error: BeepError | undefined];
  /** A profile handler threw or rejected; the session carries on. */
  handlerError: [error: unknown];
  /** A tuning reset completed: a fresh session state over the new transport (greetings under way). */
  tuned: [core: SessionCore];
}

/**
 * A BEEP session over a stream transport (TCP, or TLS after tuning).
 */
export class Session extends EventEmitter<SessionEvents> {
  /** Protocol state; replaced on a tuning reset. */
  core: SessionCore;
  /** The transport. */
  socket: Duplex;
  readonly role: Role;
  private options: SessionOptions;
  private flushScheduled = false;
  private waitingDrain = false;
  private transportClosed = false;
  private readonly closed: Promise<void>;
  private detach: () => void = () => undefined;

  constructor(socket: Duplex, role: Role, options: SessionOptions = {}) {
    super();
    this.socket = socket;
    this.role = role;
    // A copy: a tuning reset changes this session's options, never the server's.
    this.options = { ...options };
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.core = this.buildCore();
    this.attach(socket);
  }

  private buildCore(): SessionCore {
    const core = new SessionCore({ ...this.options, role: this.role });
    core.owner = this;
    core.on('output', () => this.scheduleFlush());
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
    const onData = (chunk: Buffer): void => this.core.receive(chunk);
    const onEnd = (): void => {
      // The peer will send nothing more. After a release that is expected.
      if (this.core.state !== 'closed') this.core.transportClosed();
      socket.end();
    };
    const onError = (err: Error): void => {
      this.core.transportClosed(new BeepError(ErrorCodes.TRANSPORT, `transport error: ${err.message}`, { cause: err, origin: 'remote' }));
    };
    const onClose = (): void => {
      this.transportClosed = true;
      this.core.transportClosed();
      this.emit('close', this.core.failure);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.detach = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.waitingDrain || this.transportClosed || this.socket.destroyed) return;
    const socket = this.socket;
    for (;;) {
      const bufs = this.core.pull();
      if (!bufs) return;
      // One vectored write per batch (cork/uncork makes net use writev).
      socket.cork();
      for (const b of bufs) socket.write(b);
      socket.uncork();
      if (socket.writableNeedDrain) {
        this.waitingDrain = true;
        socket.once('drain', () => {
          this.waitingDrain = false;
          this.flush();
        });
        return;
      }
    }
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
      raw.destroy();
      this.emit('close', e);
      throw e;
    }
    this.resetTransport(result.socket, { security: result.security });
    this.emit('tuned', this.core);
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
    this.flushScheduled = false;
    this.core = this.buildCore();
    old.terminate(new BeepError(ErrorCodes.SESSION_CLOSED, 'session reset by transport tuning'));
    this.attach(transport);
  }
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
  host?: string;
  port: number;
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
  const { host = '127.0.0.1', port, signal, timeout = 30000, ...rest } = options;
  return new Promise<Session>((resolve, reject) => {
    if (signal?.aborted) return reject(new BeepError(ErrorCodes.ABORTED, 'connect aborted', { cause: signal.reason }));
    const socket = net.connect({ host, port });
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
    const timer = setTimeout(() => finish(new BeepError(ErrorCodes.TRANSPORT, `no greeting from ${host}:${port} within ${timeout} ms`)), timeout);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (err) => finish(new BeepError(ErrorCodes.TRANSPORT, `cannot connect to ${host}:${port}: ${err.message}`, { cause: err })));
    session.whenGreeted().then(() => finish(null), (err: Error) => finish(err));
  });
}

/** Options of {@link createServer}. */
export interface ServerOptions extends SessionOptions {}

/** Events of a {@link BeepServer}. */
export interface ServerEvents {
  /** A connection was accepted and its session started (greeting sent). */
  session: [session: Session];
  /** The listening socket failed. */
  error: [error: Error];
}

/**
 * A BEEP listener: one {@link Session} per accepted TCP connection, each
 * isolated (a failing session never affects another).
 */
export class BeepServer extends EventEmitter<ServerEvents> {
  readonly server: net.Server;
  readonly sessions = new Set<Session>();
  private readonly options: ServerOptions;

  constructor(options: ServerOptions = {}) {
    super();
    this.options = options;
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on('error', (err) => this.emit('error', err));
  }

  private accept(socket: net.Socket): void {
    const session = new Session(socket, 'listener', this.options);
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    this.emit('session', session);
  }

  /** Listen on `host:port` (defaults 127.0.0.1:10288; port 0 picks a free one). */
  listen(port = 10288, host = '127.0.0.1'): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  /** The bound address, once listening. */
  address(): net.AddressInfo | null {
    return this.server.address() as net.AddressInfo | null;
  }

  /**
   * Stop accepting connections and release every session (destroying those
   * that do not release within `graceMs`, default 5000).
   */
  async close(graceMs = 5000): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(
      [...this.sessions].map(async (s) => {
        const timer = setTimeout(() => s.destroy(new BeepError(ErrorCodes.SESSION_CLOSED, 'server shutting down')), graceMs);
        try {
          await s.close(421, 'server shutting down');
        } catch {
          s.destroy();
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    await stopped;
  }
}

/** Create a BEEP listener serving `options.profiles`. */
export function createServer(options: ServerOptions = {}): BeepServer {
  return new BeepServer(options);
}
