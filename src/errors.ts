/**
 * Error types shared by every layer of beepstream.
 *
 * Every error raised by the library is a {@link BeepError} with a stable string
 * `code` (`BEEP_ERR_…`) that programs may switch on, an RFC 3080 §8 reply code
 * where one applies, an `origin` telling whether this peer or the remote
 * peer caused it, and a `scope` — what it ends:
 *
 * - `session` ({@link BeepSessionError}): the whole session is gone (malformed
 *   frame, seqno mismatch, window overrun — RFC 3080 §2.2.1.1 —, a failed
 *   transport, a refused greeting);
 * - `channel` ({@link BeepChannelError}): one channel (start or close refused,
 *   channel closed with work pending);
 * - `operation` ({@link BeepOperationError}): one request or call (an ERR
 *   reply, an aborted call, a bad argument, a document that does not parse).
 *
 * Node errors (EADDRINUSE, ECONNREFUSED, a bad port…) are wrapped, the Node
 * error kept as `cause`: {@link listenError}, {@link transportError}.
 *
 * @module
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export const ErrorCodes = {
  /** A frame header or trailer did not match RFC 3080 §2.2.1 / RFC 3081 §3.1.3 syntax. */
  FRAME_SYNTAX: 'BEEP_ERR_FRAME_SYNTAX',
  /** A header line exceeded the configured maximum length. */
  HEADER_TOO_LONG: 'BEEP_ERR_HEADER_TOO_LONG',
  /** A frame's payload exceeded the configured maximum frame size. */
  FRAME_TOO_LARGE: 'BEEP_ERR_FRAME_TOO_LARGE',
  /** An assembled message exceeded the configured maximum message size. */
  MESSAGE_TOO_LARGE: 'BEEP_ERR_MESSAGE_TOO_LARGE',
  /** The peer violated a frame-semantics rule of RFC 3080 §2.2.1.1 (session terminated). */
  PROTOCOL: 'BEEP_ERR_PROTOCOL',
  /** The peer sent more payload than the advertised window allows (RFC 3081 §3.1.2). */
  WINDOW_OVERRUN: 'BEEP_ERR_WINDOW_OVERRUN',
  /** The peer's sequence number did not match the expected one (RFC 3080 §2.2.1.2). */
  SEQNO_MISMATCH: 'BEEP_ERR_SEQNO_MISMATCH',
  /** A reply was poorly formed on channel 0 (RFC 3080 §2.2.2.1). */
  BAD_REPLY: 'BEEP_ERR_BAD_REPLY',
  /** The peer answered a MSG with ERR. */
  REPLY_ERROR: 'BEEP_ERR_REPLY',
  /** The listener refused the session in its greeting (RFC 3080 §2.4, usually 421). */
  SESSION_REFUSED: 'BEEP_ERR_SESSION_REFUSED',
  /** The peer refused to start a channel. */
  START_REFUSED: 'BEEP_ERR_START_REFUSED',
  /** The peer refused to close a channel or release the session. */
  CLOSE_REFUSED: 'BEEP_ERR_CLOSE_REFUSED',
  /** The session ended (transport closed or session released) with work pending. */
  SESSION_CLOSED: 'BEEP_ERR_SESSION_CLOSED',
  /** The channel was closed with work pending. */
  CHANNEL_CLOSED: 'BEEP_ERR_CHANNEL_CLOSED',
  /** The operation was aborted through an AbortSignal. */
  ABORTED: 'BEEP_ERR_ABORTED',
  /** An operation is not allowed in the current state (e.g. a MSG on a closing channel). */
  INVALID_STATE: 'BEEP_ERR_INVALID_STATE',
  /** An argument given to the API was invalid. */
  INVALID_ARGUMENT: 'BEEP_ERR_INVALID_ARGUMENT',
  /** The transport failed (socket error, connect failure, timeout). */
  TRANSPORT: 'BEEP_ERR_TRANSPORT',
  /** A listening socket could not be opened (address in use or not available, host not found, permission). */
  LISTEN: 'BEEP_ERR_LISTEN',
  /** Authentication failed or the server could not be verified (SASL). */
  AUTH: 'BEEP_ERR_AUTH',
  /** A configured limit was hit (channels, outstanding messages, ...). */
  LIMIT: 'BEEP_ERR_LIMIT',
  /**
   * The peer made the session hold more than its memory budget
   * (`sessionMemoryBudget`, `maxSessionInbound`): replies it will not take, messages it will not let finish.
   */
  MEMORY_BUDGET: 'BEEP_ERR_MEMORY_BUDGET',
  /**
   * The peer sent too many frames or requests that carry no progress (`maxNoProgressRate`):
   * empty intermediate frames, SEQs that move nothing, refused starts, start/close churn.
   */
  NO_PROGRESS: 'BEEP_ERR_NO_PROGRESS',
  /**
   * A received XML document was refused as a whole (reply code 500): not well-formed, not
   * UTF-8, a DOCTYPE or entity declaration, an unknown entity, over the size or depth limit.
   */
  XML_SYNTAX: 'BEEP_ERR_XML_SYNTAX',
  /** A received XML document parsed but an element or attribute was missing or invalid (reply code 501). */
  XML_PARAMETER: 'BEEP_ERR_XML_PARAMETER',
  /** A command-line argument or configuration value was invalid (the CLI exits with status 2). */
  USAGE: 'BEEP_ERR_USAGE',
  /** An operation did not finish within its time limit. */
  TIMEOUT: 'BEEP_ERR_TIMEOUT',
} as const;

/** One of the values of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * The `code` of a {@link BeepError}: one of {@link ErrorCodes}, except for an
 * application error class that kept the stable codes it had before it became
 * a BeepError (`SciStreamError.code` is its draft §8 status, e.g.
 * `BAD_FORMAT`); every error also carries a library-wide `beepCode`.
 */
export type BeepErrorCode = ErrorCode | (string & {});

/** Who caused an error: this peer (`local`) or the remote peer (`remote`). */
export type ErrorOrigin = 'local' | 'remote';

/** What an error ends: the session, one channel, or one operation (DESIGN.md, Errors). */
export type ErrorScope = 'session' | 'channel' | 'operation';

/** The scope of each library code, for errors built as a plain {@link BeepError}. */
const SCOPE_OF: Readonly<Record<ErrorCode, ErrorScope>> = {
  BEEP_ERR_FRAME_SYNTAX: 'session',
  BEEP_ERR_HEADER_TOO_LONG: 'session',
  BEEP_ERR_FRAME_TOO_LARGE: 'session',
  BEEP_ERR_MESSAGE_TOO_LARGE: 'session',
  BEEP_ERR_PROTOCOL: 'session',
  BEEP_ERR_WINDOW_OVERRUN: 'session',
  BEEP_ERR_SEQNO_MISMATCH: 'session',
  BEEP_ERR_BAD_REPLY: 'session',
  BEEP_ERR_REPLY: 'operation',
  BEEP_ERR_SESSION_REFUSED: 'session',
  BEEP_ERR_START_REFUSED: 'channel',
  BEEP_ERR_CLOSE_REFUSED: 'channel',
  BEEP_ERR_SESSION_CLOSED: 'session',
  BEEP_ERR_CHANNEL_CLOSED: 'channel',
  BEEP_ERR_ABORTED: 'operation',
  BEEP_ERR_INVALID_STATE: 'operation',
  BEEP_ERR_INVALID_ARGUMENT: 'operation',
  BEEP_ERR_TRANSPORT: 'session',
  BEEP_ERR_LISTEN: 'session',
  BEEP_ERR_AUTH: 'session',
  BEEP_ERR_LIMIT: 'operation',
  BEEP_ERR_MEMORY_BUDGET: 'session',
  BEEP_ERR_NO_PROGRESS: 'session',
  BEEP_ERR_XML_SYNTAX: 'operation',
  BEEP_ERR_XML_PARAMETER: 'operation',
  BEEP_ERR_USAGE: 'operation',
  BEEP_ERR_TIMEOUT: 'operation',
};

/** The scope an error with library code `code` has unless its class fixes one. */
export function scopeOf(code: ErrorCode): ErrorScope {
  return SCOPE_OF[code];
}

/** Options common to every {@link BeepError}. */
export interface BeepErrorOptions {
  /** RFC 3080 §8 three-digit reply code, where one applies. */
  replyCode?: number;
  /** Who raised it. Defaults to `local`. */
  origin?: ErrorOrigin;
  /** The underlying error. */
  cause?: unknown;
  /** What the error ends; default: fixed by the class, else {@link scopeOf} the code. */
  scope?: ErrorScope;
}

/** Base class of every error raised by beepstream. */
export class BeepError extends Error {
  /**
   * Stable, machine-readable code: `BEEP_ERR_…` ({@link ErrorCodes}), except for
   * the application classes that document their own (see {@link BeepErrorCode}).
   */
  readonly code: BeepErrorCode;
  /** The library-wide code (`BEEP_ERR_…`), always one of {@link ErrorCodes}. */
  readonly beepCode: ErrorCode;
  /** RFC 3080 §8 reply code, where one applies. */
  readonly replyCode: number | undefined;
  /** Who raised the error. */
  readonly origin: ErrorOrigin;
  /** What the error ends: the session, one channel, or one operation. */
  readonly scope: ErrorScope;

  constructor(code: ErrorCode, message: string, options: BeepErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.beepCode = code;
    this.replyCode = options.replyCode;
    this.origin = options.origin ?? 'local';
    this.scope = options.scope ?? (new.target as { readonly fixedScope?: ErrorScope }).fixedScope ?? scopeOf(code);
  }
}

/** An error that ends the session (RFC 3080 §2.2.1.1 violations, a failed transport, a refused greeting). */
export class BeepSessionError extends BeepError {
  /** @internal */
  static readonly fixedScope: ErrorScope = 'session';
  declare readonly scope: 'session';
}

/** An error that ends one channel (start or close refused, channel closed with work pending). */
export class BeepChannelError extends BeepError {
  /** @internal */
  static readonly fixedScope: ErrorScope = 'channel';
  declare readonly scope: 'channel';
}

/** An error that ends one operation (an ERR reply, an aborted or timed-out call, a bad argument or document). */
export class BeepOperationError extends BeepError {
  /** @internal */
  static readonly fixedScope: ErrorScope = 'operation';
  declare readonly scope: 'operation';
}

/**
 * A {@link BeepError} of the class its code's scope calls for
 * ({@link BeepSessionError}, {@link BeepChannelError} or {@link BeepOperationError}).
 */
export function beepError(code: ErrorCode, message: string, options: BeepErrorOptions = {}): BeepError {
  const scope = options.scope ?? scopeOf(code);
  const Class = scope === 'session' ? BeepSessionError : scope === 'channel' ? BeepChannelError : BeepOperationError;
  return new Class(code, message, options);
}

/**
 * The byte stream from the peer violated RFC 3080 §2.2.1 or RFC 3081 §3.1: the
 * session is terminated without a response, as those sections require.
 */
export class BeepFramingError extends BeepSessionError {
  /** Octet offset in the inbound stream at which the problem was detected, if known. */
  readonly offset: number | undefined;
  constructor(code: ErrorCode, message: string, offset?: number, options: BeepErrorOptions = {}) {
    super(code, message, { origin: 'remote', ...options });
    this.offset = offset;
  }
}

/** A negative reply (`ERR`, or an `<error>` element) received from the peer. */
export class BeepReplyError extends BeepError {
  /** The textual diagnostic sent by the peer, if any (for humans, never for programs). */
  readonly diagnostic: string;
  /** The `xml:lang` of the diagnostic, if given. */
  readonly lang: string | undefined;
  /** The whole body of the negative reply, when it came as a message (ERR). */
  readonly body: Uint8Array | undefined;
  constructor(
    code: ErrorCode,
    replyCode: number,
    diagnostic: string,
    options: { lang?: string; cause?: unknown; body?: Uint8Array } = {},
  ) {
    super(code, diagnostic ? `${replyCode} ${diagnostic}` : `reply code ${replyCode}`, {
      replyCode,
      origin: 'remote',
      cause: options.cause,
    });
    this.diagnostic = diagnostic;
    this.lang = options.lang;
    this.body = options.body;
  }
}

/** True when `err` is a {@link BeepError} carrying `code` (as its `code` or its `beepCode`). */
export function isBeepError(err: unknown, code?: BeepErrorCode): err is BeepError {
  return err instanceof BeepError && (code === undefined || err.code === code || err.beepCode === code);
}

/** Why a listen failed, by the Node error's `code`, in words. */
const LISTEN_REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EAI_FAIL: 'host name lookup failed',
  EAI_NONAME: 'host not found',
  EINVAL: 'invalid address',
  ERR_SOCKET_BAD_PORT: 'invalid port',
  ERR_SERVER_ALREADY_LISTEN: 'already listening',
};

/**
 * Wrap the Node error of a failed `listen(port, host)` (EADDRINUSE, EADDRNOTAVAIL,
 * ENOTFOUND, EACCES, a bad port…) into a {@link BeepError} with code
 * {@link ErrorCodes.LISTEN} whose message names the address and the reason, e.g.
 * `cannot listen on 127.0.0.1:7000: address in use (EADDRINUSE)`; the Node error is its `cause`.
 */
export function listenError(err: unknown, host: string, port: number | string): BeepError {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  const reason = (code !== undefined ? LISTEN_REASONS[code] : undefined) ?? (err instanceof Error ? err.message : String(err));
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return new BeepSessionError(ErrorCodes.LISTEN, `cannot listen on ${address}: ${reason}${code !== undefined ? ` (${code})` : ''}`, { cause: err });
}

/**
 * Wrap the Node error of a failed connect or socket (ECONNREFUSED, ETIMEDOUT, a
 * bad port — `ERR_SOCKET_BAD_PORT` —, a host not found…) into a
 * {@link BeepSessionError} with code {@link ErrorCodes.TRANSPORT}, e.g.
 * `cannot connect to 127.0.0.1:70000: Port should be >= 0 and < 65536… (ERR_SOCKET_BAD_PORT)`;
 * the Node error is its `cause`. A {@link BeepError} is returned unchanged.
 */
export function transportError(err: unknown, host: string, port: number | string, action = 'connect to'): BeepError {
  if (err instanceof BeepError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  const text = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  const suffix = code !== undefined && !text.includes(code) ? ` (${code})` : '';
  return new BeepSessionError(ErrorCodes.TRANSPORT, `cannot ${action} ${address}: ${text}${suffix}`, { cause: err });
}

/** RFC 3080 §8 reply codes, by name. */
export const ReplyCodes = {
  SUCCESS: 200,
  SERVICE_NOT_AVAILABLE: 421,
  ACTION_NOT_TAKEN: 450,
  ACTION_ABORTED: 451,
  TEMPORARY_AUTH_FAILURE: 454,
  GENERAL_SYNTAX_ERROR: 500,
  PARAMETER_SYNTAX_ERROR: 501,
  PARAMETER_NOT_IMPLEMENTED: 504,
  AUTHENTICATION_REQUIRED: 530,
  MECHANISM_INSUFFICIENT: 534,
  AUTHENTICATION_FAILURE: 535,
  NOT_AUTHORIZED: 537,
  ENCRYPTION_REQUIRED: 538,
  REQUESTED_ACTION_NOT_TAKEN: 550,
  PARAMETER_INVALID: 553,
  TRANSACTION_FAILED: 554,
} as const;
