/**
 * The seam between the channel layer and everything above it: a typed
 * {@link SessionHandle} that profiles and applications see instead of the
 * session core, and the {@link TuningContext} that tuning profiles (TLS,
 * SASL — RFC 3080 §3) get to hold output, resume it, reset the transport and
 * record the authenticated identity.
 *
 * Both are thin adapters over the session state ({@link SessionCore}) and, when
 * there is one, the transport glue ({@link Session}) that owns it. One handle
 * names one session state: a tuning reset discards every channel and starts a
 * fresh state (RFC 3080 §3), so it gets a fresh handle; the handle of the old
 * state reports `isClosed`. The session `id` is kept across resets.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import type { TransportInfo } from '../transports/index.js';
import type { Channel } from './channel.js';
import type { SessionCore, StartChannelOptions } from './core.js';
import type { Greeting } from './mgmt.js';
import type { Role, SessionIdentity, TransportSecurity } from './types.js';

/**
 * What a profile sees of its session: who the peer is, how the transport is
 * secured, what the peer offers, and how to start channels or end it.
 * Obtain it as `channel.session`, `request.session` in `onStart`, or
 * `session.handle` of a {@link Session}.
 */
export interface SessionHandle {
  /** Process-unique session id (as in diagnostics events and logs), kept across tuning resets. */
  readonly id: number;
  /** Our role in the session (RFC 3080 §2.1). */
  readonly role: Role;
  /** The transport (kind and ends), when the session runs over one the transport layer made or knows. */
  readonly transport: TransportInfo | undefined;
  /** `host:port` of a TCP peer (shorthand for `transport.remote` over TCP). */
  readonly remote: string | undefined;
  /** What the transport provides: TLS, its version and cipher, the peer's certificate. */
  readonly security: TransportSecurity;
  /** The authenticated peer (set by a SASL profile), if any. */
  readonly identity: SessionIdentity | undefined;
  /** Profile URIs the peer advertised in its greeting (empty until it arrived). */
  readonly peerProfiles: readonly string[];
  /** The serverName of the first successful start (RFC 3080 §2.3.1.2). */
  readonly serverName: string | undefined;
  /** True once this session state has ended (released, terminated, or reset by tuning). */
  readonly isClosed: boolean;
  /** Resolves with the peer's greeting; rejects if the session ends first or is refused. */
  whenGreeted(): Promise<Greeting>;
  /** Start a channel (RFC 3080 §2.3.1.2); see `Session.startChannel`. */
  startChannel(profiles: string | readonly (string | { uri: string; content?: string | Uint8Array })[], options?: StartChannelOptions): Promise<Channel>;
  /** Release the session (RFC 3080 §2.4); rejects if the peer declines. */
  close(code?: number, diagnostic?: string): Promise<void>;
  /** Terminate the session at once. */
  destroy(err?: Error): void;
  /** Call `listener` once when this session state ends; returns a function that removes it. */
  onClose(listener: (error: BeepError | undefined) => void): () => void;
}

/** The new transport a tuning reset switches to, and what it provides. */
export interface TunedTransport {
  readonly socket: Duplex;
  readonly security: TransportSecurity;
}

/**
 * What a tuning profile (RFC 3080 §3) may do to its session, beyond what any
 * profile may: stop and resume output around the tuning exchange, reset the
 * session onto a new transport (a TLS handshake over the old one), and record
 * the authenticated identity. A listener's tuning profile gets it as
 * `request.tuning` in `onStart` and `channel.tuning` in its handlers (only
 * profiles defined with `tuning: true` do); the initiator's side of a tuning
 * profile takes it from {@link tuningOf}.
 */
export interface TuningContext {
  /** The session being tuned. */
  readonly session: SessionHandle;
  /**
   * Send nothing more on the session from now on, until {@link resumeOutput}
   * or a reset. Prefer the `hold` option of the message that ends the
   * exchange (a request, a reply, a channel start): it holds once that
   * message is written.
   */
  holdOutput(): void;
  /** Let output flow again after a tuning exchange that did not go ahead. */
  resumeOutput(): void;
  /**
   * Tuning reset (RFC 3080 §3): stop reading the transport, hand it to `wrap`
   * (e.g. a TLS handshake over it), then discard every channel and the
   * session state, switch to what `wrap` returns and greet again. A failing
   * `wrap` terminates the session with its error (and this rejects).
   * Rejects with `BEEP_ERR_INVALID_STATE` on a session without transport glue.
   */
  resetTransport(wrap: (raw: Duplex, transport: TransportInfo | undefined) => Promise<TunedTransport>): Promise<void>;
  /**
   * Record the session's authenticated identity (RFC 3080 §4). Only once: a
   * second call throws `BEEP_ERR_INVALID_STATE`.
   */
  setIdentity(identity: SessionIdentity): void;
}

/**
 * @internal What the transport glue gives the handles of the session states it
 * runs (implemented by {@link Session}).
 */
export interface SessionGlue {
  readonly transport: TransportInfo | undefined;
  close(code?: number, diagnostic?: string): Promise<void>;
  destroy(err?: Error): void;
  upgrade(wrap: (raw: Duplex) => Promise<{ socket: Duplex; security: TransportSecurity }>): Promise<void>;
}

const glues = new WeakMap<SessionCore, SessionGlue>();
const handles = new WeakMap<SessionCore, CoreHandle>();
const tunings = new WeakMap<SessionCore, TuningContext>();
const cores = new WeakMap<SessionHandle, SessionCore>();

/** @internal The glue (a {@link Session}) runs `core`: its handle closes and tunes through it. */
export function attachGlue(core: SessionCore, glue: SessionGlue): void {
  glues.set(core, glue);
}

class CoreHandle implements SessionHandle {
  readonly #core: SessionCore;
  constructor(core: SessionCore) {
    this.#core = core;
  }
  get id(): number {
    return this.#core.id;
  }
  get role(): Role {
    return this.#core.role;
  }
  get transport(): TransportInfo | undefined {
    return glues.get(this.#core)?.transport;
  }
  get remote(): string | undefined {
    const t = this.transport;
    return t?.kind === 'tcp' ? t.remote : undefined;
  }
  get security(): TransportSecurity {
    return this.#core.security;
  }
  get identity(): SessionIdentity | undefined {
    return this.#core.identity;
  }
  get peerProfiles(): readonly string[] {
    return this.#core.peerGreeting?.profiles ?? [];
  }
  get serverName(): string | undefined {
    return this.#core.serverName;
  }
  get isClosed(): boolean {
    return this.#core.isClosed;
  }
  whenGreeted(): Promise<Greeting> {
    return this.#core.whenGreeted();
  }
  startChannel(profiles: string | readonly (string | { uri: string; content?: string | Uint8Array })[], options: StartChannelOptions = {}): Promise<Channel> {
    return this.#core.startChannel(profiles, options);
  }
  close(code = 200, diagnostic?: string): Promise<void> {
    const glue = glues.get(this.#core);
    return glue ? glue.close(code, diagnostic) : this.#core.release(code, diagnostic);
  }
  destroy(err?: Error): void {
    const glue = glues.get(this.#core);
    if (glue) return glue.destroy(err);
    this.#core.terminate(err instanceof BeepError ? err : new BeepError(ErrorCodes.SESSION_CLOSED, err?.message ?? 'session destroyed locally', { cause: err }));
  }
  onClose(listener: (error: BeepError | undefined) => void): () => void {
    const core = this.#core;
    if (core.isClosed) {
      queueMicrotask(() => listener(core.failure));
      return () => undefined;
    }
    core.once('close', listener);
    return () => {
      core.off('close', listener);
    };
  }
}

/** @internal The handle of a session state (one per state, made on first use). */
export function handleOf(core: SessionCore): SessionHandle {
  let h = handles.get(core);
  if (!h) {
    h = new CoreHandle(core);
    handles.set(core, h);
    cores.set(h, core);
  }
  return h;
}

/** @internal The tuning context of a session state (one per state, made on first use). */
export function tuningFor(core: SessionCore): TuningContext {
  let t = tunings.get(core);
  if (t) return t;
  const session = handleOf(core);
  t = Object.freeze({
    session,
    holdOutput(): void {
      core.outputHeld = true;
    },
    resumeOutput(): void {
      core.releaseOutput();
    },
    resetTransport(wrap: (raw: Duplex, transport: TransportInfo | undefined) => Promise<TunedTransport>): Promise<void> {
      const glue = glues.get(core);
      if (!glue) return Promise.reject(new BeepError(ErrorCodes.INVALID_STATE, 'a tuning reset needs a session over a transport'));
      if (core.isClosed) return Promise.reject(core.failure ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'the session is closed'));
      return glue.upgrade((raw) => wrap(raw, glue.transport));
    },
    setIdentity(identity: SessionIdentity): void {
      core.setIdentity(identity);
    },
  });
  tunings.set(core, t);
  return t;
}

/**
 * The tuning context of a session, for the initiating side of a tuning
 * profile (e.g. `startTls`, `authenticate`): `session` is a
 * {@link SessionHandle} or a {@link Session} (its current state).
 */
export function tuningOf(session: SessionHandle | { readonly handle: SessionHandle }): TuningContext {
  const h = 'handle' in session ? session.handle : session;
  const core = cores.get(h);
  if (!core) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'not a session handle of this library');
  return tuningFor(core);
}
