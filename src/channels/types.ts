/**
 * Shared types of the channel layer: limits, the interface a profile
 * implements (the profiles layer builds these with `defineProfile`), and the
 * start/close decisions a profile returns.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { BeepError, ErrorCodes } from '../errors.js';
import type { Channel } from './channel.js';
import type { IncomingMessage } from './message.js';
import type { Responder } from './responder.js';
import type { SessionHandle, TuningContext } from './handle.js';

/** Limits and tuning of one session. Every field has a safe default. */
export interface SessionLimits {
  /** Longest frame header line accepted (octets, default 128). */
  maxHeaderLine?: number;
  /** Largest inbound frame payload (octets, default 8 MiB). */
  maxFrameSize?: number;
  /**
   * Largest outbound frame payload (octets, default 64 KiB); never more than
   * the peer's window. It bounds how long a bulk channel can delay a control
   * reply: one frame.
   */
  maxSendFrame?: number;
  /**
   * Largest message assembled in memory: `bytes()`/`text()` of an incoming
   * message, an ERR body (octets, default 16 MiB). Streamed bodies are bounded
   * by the window instead.
   */
  maxMessageSize?: number;
  /** Largest channel-0 message (octets, default 64 KiB). */
  maxMgmtMessage?: number;
  /** Largest MIME header block of a message (octets, default 16 KiB). */
  maxEntityHeaders?: number;
  /** Most channels open at once, channel 0 excluded (default 4096). */
  maxChannels?: number;
  /** Most MSGs this peer has sent on one channel awaiting a reply (default 1024). */
  maxOutstanding?: number;
  /** Most MSGs received on one channel and not yet answered (default 1024). */
  maxInboundQueue?: number;
  /**
   * Receive buffer a channel starts with: the window announced when it opens
   * (octets, default 64 KiB; at least 4096 — RFC 3081 §3.1.1's initial window
   * applies until the announcement arrives). Also the floor a slow reader's
   * window shrinks to.
   */
  receiveWindow?: number;
  /**
   * Ceiling of one channel's receive window (octets, default 64 MiB: enough
   * for 1 Gbit/s over 100 ms with the sender's queue). The flow policy
   * (`spec/flow-control.md`) sizes each window to about 2 × rate × RTT: it
   * grows with the rate the reader keeps (slow start: up to 6 × what one
   * round trip delivered) and while the window holds the sender back, and
   * halves toward the target when the reader is slow. Set equal to
   * `receiveWindow` to fix the size.
   */
  maxReceiveWindow?: number;
  /**
   * Receive buffer shared by all channels of a session beyond their initial
   * windows (octets, default 64 MiB). When it is spent, a channel below its
   * fair share (budget ÷ channels holding extra buffer) takes buffer back from
   * those above it.
   */
  sessionReceiveBudget?: number;
  /**
   * Memory a hostile peer can make the session hold (octets, default
   * 64 MiB): window granted and not yet used, octets received and not yet
   * consumed, and replies owed to the peer that its window does not let us
   * send (plus a fixed cost per waiting message). Beyond it, no channel is
   * credited more than RFC 3081's initial 4096 octets, and a channel whose
   * replies cannot be sent is not credited at all (issue 17, spec/limits.md).
   */
  sessionMemoryBudget?: number;
  /**
   * Most MSGs awaiting our replies on all channels of the session together
   * (default 4096); a further MSG terminates the session (`BEEP_ERR_MEMORY_BUDGET`).
   */
  maxSessionInbound?: number;
  /**
   * Events that carry no progress the peer may cause per second, with a
   * burst of five seconds' worth (default 200): zero-length intermediate
   * frames, SEQs that move no window edge, refused channel-0 requests
   * (starts, closes), channels closed without carrying a single octet.
   * Beyond it, a start is refused with 554; a further burst, or a frame
   * without progress, terminates the session (`BEEP_ERR_NO_PROGRESS`).
   */
  maxNoProgressRate?: number;
  /** Octets an outbound stream may queue ahead of the window before its writer waits (default 64 KiB). */
  sendHighWaterMark?: number;
  /** Deepest element nesting accepted in a channel-0 document (default 8; they need 3). */
  maxMgmtDepth?: number;
  /**
   * Channel starts the peer may request per second, with an equal burst
   * (default 1000). Starts beyond it are refused with 554.
   */
  maxStartRate?: number;
  /**
   * Milliseconds the peer has to complete its greeting; then the session is
   * terminated (default 30000). `Infinity` disables it.
   */
  greetingTimeout?: number;
  /**
   * Milliseconds a session may sit with no channel open but channel 0 and
   * nothing received before it is terminated. Default 600000 for a listener,
   * `Infinity` (off) for an initiator.
   */
  idleTimeout?: number;
  /**
   * Milliseconds a frame may take to arrive once its first octet came (a
   * slow-loris writer trickling a header); then the session is terminated
   * (default 60000). `Infinity` disables it.
   */
  frameTimeout?: number;
  /**
   * Milliseconds our writes may stay blocked on a peer that does not read
   * (the transport's buffer full); then the session is terminated (default
   * 60000). `Infinity` disables it.
   */
  writeStallTimeout?: number;
}

/**
 * Opt-in tolerances for peers that deviate from RFC 3080/3081, for interoperability. All are
 * off by default: a strict session ends on what the RFCs call poorly formed. See
 * `spec/conformance.md`.
 */
export interface CompatOptions {
  /**
   * Accept a NUL frame whose payload is exactly an empty MIME header block (CRLF, 2 octets) and
   * treat it as an empty NUL. The Vortex Library (C), with its default settings, ends ANS/NUL
   * replies with `NUL 1 0 . 20 2` + CRLF; RFC 3080 §2.2.1.1 says a NUL with a non-zero size is
   * poorly formed and ends the session, which is what happens without this option. The two
   * octets count in the seqno and window as sent, and are released from the window at once.
   * Any other NUL payload still ends the session.
   */
  acceptNulHeaderBlock?: boolean;
}

/** The resolved limits. */
export type ResolvedLimits = Required<SessionLimits>;

/** Default limits. */
export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  maxHeaderLine: 128,
  maxFrameSize: 8 * 1024 * 1024,
  maxSendFrame: 64 * 1024,
  maxMessageSize: 16 * 1024 * 1024,
  maxMgmtMessage: 64 * 1024,
  maxEntityHeaders: 16 * 1024,
  maxChannels: 4096,
  maxOutstanding: 1024,
  maxInboundQueue: 1024,
  receiveWindow: 64 * 1024,
  maxReceiveWindow: 64 * 1024 * 1024,
  sessionReceiveBudget: 64 * 1024 * 1024,
  sendHighWaterMark: 64 * 1024,
  sessionMemoryBudget: 64 * 1024 * 1024,
  maxSessionInbound: 4096,
  maxNoProgressRate: 200,
  maxMgmtDepth: 8,
  maxStartRate: 1000,
  greetingTimeout: 30_000,
  idleTimeout: Infinity,
  frameTimeout: 60_000,
  writeStallTimeout: 60_000,
});

/** The idle timeout a listener's sessions get unless set (ms). */
export const LISTENER_IDLE_TIMEOUT = 600_000;

const TIMEOUTS = new Set(['greetingTimeout', 'idleTimeout', 'frameTimeout', 'writeStallTimeout']);

/** A limit the caller got wrong: `BEEP_ERR_INVALID_ARGUMENT` (a `TypeError` before). */
function badLimit(message: string): BeepError {
  return new BeepError(ErrorCodes.INVALID_ARGUMENT, message);
}

/** Merge user limits over the defaults, validating them; a bad one throws `BEEP_ERR_INVALID_ARGUMENT`. */
export function resolveLimits(l: SessionLimits = {}, role?: Role): ResolvedLimits {
  const out = { ...DEFAULT_LIMITS } as Record<string, number>;
  if (role === 'listener') out.idleTimeout = LISTENER_IDLE_TIMEOUT;
  for (const [k, v] of Object.entries(l)) {
    if (v === undefined) continue;
    if (!(k in DEFAULT_LIMITS)) throw badLimit(`unknown limit ${JSON.stringify(k)}`);
    if (typeof v !== 'number' || !(v > 0)) throw badLimit(`limit ${k} must be a positive number`);
    if (!Number.isFinite(v) && !TIMEOUTS.has(k)) throw badLimit(`limit ${k} must be finite`);
    out[k] = v;
  }
  if ((out.maxHeaderLine as number) < 62) throw badLimit('maxHeaderLine must be at least 62 (the longest legal header)');
  if ((out.receiveWindow as number) < 4096) throw badLimit('receiveWindow must be at least 4096 (RFC 3081 §3.1.1)');
  if ((out.maxReceiveWindow as number) < (out.receiveWindow as number)) out.maxReceiveWindow = out.receiveWindow as number;
  if ((out.maxReceiveWindow as number) > 2147483647) throw badLimit('maxReceiveWindow must be below 2^31');
  return out as unknown as ResolvedLimits;
}

/** Which role a peer plays in a session (RFC 3080 §2.1). */
export type Role = 'initiator' | 'listener';

/** What a profile is told when a peer asks to start a channel with it. */
export interface StartRequest {
  /** The channel number requested. */
  readonly number: number;
  /** The session's server name (from the first successful start), if any. */
  readonly serverName: string | undefined;
  /** Piggybacked initialization content, decoded. */
  readonly content: Buffer | undefined;
  /** The session the channel would belong to. */
  readonly session: SessionHandle;
  /** The tuning context: given to tuning profiles (`tuning: true`) only. */
  readonly tuning?: TuningContext;
}

/**
 * A profile's answer to a start request: accept (optionally piggybacking
 * content) or refuse. A tuning profile (RFC 3080 §3) passes `afterReply`:
 * once the positive reply has been written, nothing more is sent on the
 * session and `afterReply` runs — e.g. to start a TLS handshake and reset.
 */
export type StartDecision =
  | void
  | undefined
  | true
  | {
      accept: true;
      content?: string | Uint8Array;
      /** Tuning: runs once the positive reply is written; nothing more is sent on the session until then. */
      afterReply?: (channel: Channel) => void;
    }
  | { accept: false; code: number; diagnostic?: string };

/** What the transport provides (set by the glue; replaced on a tuning reset). */
export interface TransportSecurity {
  /** The transport is TLS (RFC 3080 §3.1). */
  tls: boolean;
  /** Negotiated TLS version, e.g. `TLSv1.3`. */
  protocol?: string;
  /** Negotiated cipher suite name. */
  cipher?: string;
  /** The peer's certificate (DER), when it presented one and it was verified. */
  peerCertificate?: Uint8Array;
  /** Subject CN of a verified peer certificate. */
  peerCommonName?: string;
  /** The TLS-PSK identity used, when the session is PSK-secured. */
  pskIdentity?: string;
}

/** The authenticated identity of a session (RFC 3080 §4). */
export interface SessionIdentity {
  /** Authentication identity (who proved it). */
  authcid: string;
  /** Authorization identity (who to act as); defaults to `authcid`. */
  authzid: string;
  /** The mechanism that authenticated it, e.g. `SCRAM-SHA-256`. */
  mechanism: string;
}

/** A close request from the peer. */
export interface CloseRequest {
  readonly code: number;
  readonly diagnostic: string;
}

/** A profile's answer to a close request: accept (default) or refuse. */
export type CloseDecision = void | undefined | true | { accept: false; code: number; diagnostic?: string };

/**
 * What the channel layer needs of a profile. Build one with `defineProfile`
 * from the profiles layer rather than by hand.
 */
export interface ChannelProfile {
  /** URI that authoritatively identifies the profile (RFC 3080 §2.3.1.2). */
  readonly uri: string;
  /**
   * Whether to list the profile in our greeting (default true). A function is
   * asked each time a greeting is sent (e.g. after a tuning reset).
   */
  readonly advertise?: boolean | ((session: SessionHandle) => boolean);
  /**
   * Conditions checked before `onStart`: a start before TLS is refused with
   * 538, one before authentication with 530 (RFC 3080 §8).
   */
  readonly requires?: { readonly tls?: boolean; readonly authentication?: boolean };
  /**
   * A control profile: its channels' frames are sent before those of other
   * channels (after channel 0), so bulk traffic delays them by one frame at most.
   */
  readonly control?: boolean;
  /**
   * A tuning profile (TLS, SASL): offered and accepted even where the session
   * requires TLS first (`requireTls`).
   */
  readonly tuning?: boolean;
  /** Accept or refuse a channel the peer asks to start. Default: accept. */
  onStart?(request: StartRequest): StartDecision | Promise<StartDecision>;
  /** Called once a channel with this profile exists (either side started it). */
  onOpen?(channel: Channel, content: Buffer | undefined): void;
  /**
   * Handle a MSG. MSGs on a channel are handed over one at a time, in order
   * (RFC 3080 §2.6.1): the next comes once this one's reply is complete.
   * Without a handler, every MSG is answered ERR 500. A handler that throws,
   * rejects, or returns a promise that settles before any reply was begun
   * gets ERR 451 sent for it (a synchronous handler may reply later).
   */
  onMessage?(message: IncomingMessage, response: Responder, channel: Channel): void | Promise<void>;
  /** Accept or refuse the peer's request to close a channel. Default: accept. */
  onCloseRequest?(channel: Channel, request: CloseRequest): CloseDecision | Promise<CloseDecision>;
  /** Called once a channel with this profile is gone. */
  onClosed?(channel: Channel, error: Error | undefined): void;
}
