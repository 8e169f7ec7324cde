/**
 * SciStream status codes (draft-scistream-protocol-02 §8) and their BEEP
 * reply codes (RFC 3080 §8), and {@link SciStreamError}, the one error type
 * of the control plane: raised by the S2CS for an ERR reply, and thrown by
 * the client API when an ERR arrives (or the control connection fails).
 *
 * The table and the reason for each mapping are in `spec/scistream-control.md` §5.
 *
 * @module
 */
import { BeepError, BeepOperationError, ErrorCodes, type ErrorCode } from '../../errors.js';

/** The draft's §8 status codes, in its order. */
export const SCISTREAM_CODES = [
  'SUCCESS',
  'AUTH_ERROR',
  'INVALID_UID',
  'NO_RESOURCE',
  'CONN_ERROR',
  'VERSION_ERR',
  'RATE_LIMIT',
  'BAD_FORMAT',
  'SERVER_ERR',
  'TIMEOUT',
  'NOT_IMPLEMENTED',
  'UNAVAILABLE',
] as const;

/** One §8 status code. */
export type SciStreamCode = (typeof SCISTREAM_CODES)[number];

/** A §8 error code: every status code but SUCCESS (which is a RPY, never an ERR). */
export type SciStreamErrorCode = Exclude<SciStreamCode, 'SUCCESS'>;

/**
 * The BEEP reply code (RFC 3080 §8) each status code is sent with. 4xx is
 * transient (the same request may succeed later), 5xx permanent.
 * BAD_FORMAT is 500 when the body is not a well-formed control document and
 * 501 when a parameter is missing or invalid ({@link BAD_FORMAT_SYNTAX}).
 */
export const REPLY_CODES: Readonly<Record<SciStreamCode, number>> = Object.freeze({
  SUCCESS: 200,
  AUTH_ERROR: 537,
  INVALID_UID: 550,
  NO_RESOURCE: 450,
  CONN_ERROR: 554,
  VERSION_ERR: 504,
  RATE_LIMIT: 454,
  BAD_FORMAT: 501,
  SERVER_ERR: 451,
  TIMEOUT: 451,
  NOT_IMPLEMENTED: 504,
  UNAVAILABLE: 421,
});

/** Reply code of a BAD_FORMAT whose body is not a well-formed control document at all. */
export const BAD_FORMAT_SYNTAX = 500;

/** True for a string that is one of the §8 status codes. */
export function isSciStreamCode(s: unknown): s is SciStreamCode {
  return typeof s === 'string' && (SCISTREAM_CODES as readonly string[]).includes(s);
}

/** Options of a {@link SciStreamError}. */
export interface SciStreamErrorOptions {
  /** BEEP reply code; defaults to {@link REPLY_CODES}[code]. */
  replyCode?: number;
  /** Further explanation for humans (the draft's `details`). */
  details?: string;
  /** Seconds after which the same request may succeed (the draft's `retry_after`). */
  retryAfter?: number;
  /** The `host:port` concerned, e.g. the endpoint a connection failed to (the draft's `endpoint`). */
  endpoint?: string;
  /** `remote`: sent by the peer; `local`: raised here (the default). */
  origin?: 'local' | 'remote';
  cause?: unknown;
}

/** The library-wide code a §8 code is classed under (`beepCode`), for code that handles every BeepError alike. */
function beepCodeOf(code: SciStreamErrorCode, origin: 'local' | 'remote', cause: unknown): ErrorCode {
  if (origin === 'remote') return ErrorCodes.REPLY_ERROR;
  switch (code) {
    case 'AUTH_ERROR': return ErrorCodes.AUTH;
    case 'NO_RESOURCE':
    case 'RATE_LIMIT': return ErrorCodes.LIMIT;
    case 'CONN_ERROR': return ErrorCodes.TRANSPORT;
    case 'TIMEOUT': return ErrorCodes.TIMEOUT;
    case 'BAD_FORMAT': return cause instanceof BeepError && cause.beepCode.startsWith('BEEP_ERR_XML_') ? cause.beepCode : ErrorCodes.INVALID_ARGUMENT;
    case 'INVALID_UID':
    case 'VERSION_ERR':
    case 'NOT_IMPLEMENTED': return ErrorCodes.INVALID_ARGUMENT;
    default: return ErrorCodes.INVALID_STATE;
  }
}

/**
 * A SciStream control-plane error: a §8 `code`, the BEEP `replyCode` it
 * travels with, a human `message`, and where they apply `details`,
 * `retryAfter` (seconds) and `endpoint`. A {@link BeepOperationError}: its
 * `code` stays the §8 status (stable, as before it was one), its `beepCode`
 * is the library-wide class (`BEEP_ERR_REPLY` when the peer sent it;
 * `BEEP_ERR_AUTH`, `BEEP_ERR_LIMIT`, `BEEP_ERR_TRANSPORT`, `BEEP_ERR_TIMEOUT`,
 * `BEEP_ERR_XML_SYNTAX`, `BEEP_ERR_INVALID_ARGUMENT` or
 * `BEEP_ERR_INVALID_STATE` when raised here).
 */
export class SciStreamError extends BeepOperationError {
  /** The §8 status code. */
  declare readonly code: SciStreamErrorCode;
  /** RFC 3080 §8 reply code of the ERR. */
  declare readonly replyCode: number;
  /** Further explanation for humans, if any. */
  readonly details: string | undefined;
  /** Seconds after which the same request may succeed, if given. */
  readonly retryAfter: number | undefined;
  /** The `host:port` concerned, if any. */
  readonly endpoint: string | undefined;

  /** An error with a §8 code and a human message. */
  constructor(code: SciStreamErrorCode, message: string, options: SciStreamErrorOptions = {}) {
    const origin = options.origin ?? 'local';
    super(beepCodeOf(code, origin, options.cause), message, { replyCode: options.replyCode ?? REPLY_CODES[code], origin, cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
    this.endpoint = options.endpoint;
  }
}

/**
 * The status code a bare BEEP reply code stands for, when an ERR carries no
 * SciStream `<error>` (e.g. a generic `ERR 451` from the channel layer, or a
 * refused channel start: 530 before authentication).
 */
export function codeForReplyCode(replyCode: number): SciStreamErrorCode {
  switch (replyCode) {
    case 421: return 'UNAVAILABLE';
    case 450: return 'NO_RESOURCE';
    case 454: return 'RATE_LIMIT';
    case 500:
    case 501:
    case 553: return 'BAD_FORMAT';
    case 504: return 'NOT_IMPLEMENTED';
    case 530:
    case 534:
    case 535:
    case 537:
    case 538: return 'AUTH_ERROR';
    case 550: return 'INVALID_UID';
    case 554: return 'CONN_ERROR';
    default: return 'SERVER_ERR';
  }
}

const RESOURCE_ERRNO = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'BEEP_ERR_LIMIT']);
const CONN_ERRNO = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  // beepstream's own codes for a data connection that failed (BeepError.code)
  'BEEP_ERR_TRANSPORT', 'BEEP_ERR_START_REFUSED', 'BEEP_ERR_SESSION_REFUSED', 'BEEP_ERR_SESSION_CLOSED', 'BEEP_ERR_AUTH',
]);

type ErrorLike = { code?: unknown; address?: unknown; port?: unknown; endpoint?: unknown; retryAfter?: unknown; message?: unknown; cause?: unknown };

/**
 * Turn a data-server failure into what the S2CS answers. The error and its
 * `cause` chain are looked at: a {@link SciStreamError} passes through; an
 * error carrying a §8 `code` string (and optionally `endpoint`, `retryAfter`)
 * keeps it; out of ports, descriptors or memory (EADDRINUSE, EMFILE…,
 * `BEEP_ERR_LIMIT`) is NO_RESOURCE with `retryAfter`; a failed connection
 * (ECONNREFUSED, ETIMEDOUT…, `BEEP_ERR_TRANSPORT`, a refused data-profile
 * start, or an error saying it "timed out") is CONN_ERROR, with the endpoint
 * when the error names one (`address` + `port`, or `endpoint`); a closed data
 * server (`BEEP_ERR_INVALID_STATE`) is UNAVAILABLE; anything else SERVER_ERR.
 * Internal error text is never copied into the message (draft §8: avoid
 * exposing sensitive information).
 */
export function classifyDataError(err: unknown, retryAfter = 30): SciStreamError {
  const chain: ErrorLike[] = [];
  for (let e: unknown = err, i = 0; e !== null && typeof e === 'object' && i < 4; e = (e as ErrorLike).cause, i++) {
    if (e instanceof SciStreamError) return e;
    chain.push(e as ErrorLike);
  }
  const endpoint = chain.map(endpointOf).find((x) => x !== undefined);
  const withEndpoint = endpoint === undefined ? {} : { endpoint };
  const codes = chain.map((e) => e.code).filter((c): c is string => typeof c === 'string');
  const own = codes.find((c) => isSciStreamCode(c) && c !== 'SUCCESS') as SciStreamErrorCode | undefined;
  if (own) {
    const ra = chain.map((e) => e.retryAfter).find((r): r is number => typeof r === 'number' && Number.isSafeInteger(r) && r >= 0);
    return new SciStreamError(own, messageFor(own), { ...withEndpoint, ...(ra === undefined ? {} : { retryAfter: ra }), cause: err });
  }
  const resource = codes.find((c) => RESOURCE_ERRNO.has(c));
  if (resource) return new SciStreamError('NO_RESOURCE', 'the data server has no resources for this session', { details: resource, retryAfter, cause: err });
  const conn = codes.find((c) => CONN_ERRNO.has(c)) ?? (chain.some((e) => typeof e.message === 'string' && /\btimed out\b/i.test(e.message)) ? 'ETIMEDOUT' : undefined);
  if (conn) return new SciStreamError('CONN_ERROR', messageFor('CONN_ERROR'), { details: conn.startsWith('BEEP_ERR_') ? 'data connection failed' : conn, ...withEndpoint, cause: err });
  if (codes.includes('BEEP_ERR_INVALID_STATE')) return new SciStreamError('UNAVAILABLE', 'the data server is not accepting sessions', { retryAfter, cause: err });
  return new SciStreamError('SERVER_ERR', 'the data server failed to set up the session', { cause: err });
}

function endpointOf(e: ErrorLike): string | undefined {
  if (typeof e.endpoint === 'string') return e.endpoint;
  if (typeof e.address === 'string' && typeof e.port === 'number') return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
  return undefined;
}

/** A default human message for each error code. */
export function messageFor(code: SciStreamErrorCode): string {
  switch (code) {
    case 'AUTH_ERROR': return 'not authorised';
    case 'INVALID_UID': return 'invalid or unknown uid';
    case 'NO_RESOURCE': return 'requested resources unavailable';
    case 'CONN_ERROR': return 'failed to establish a connection to a remote endpoint';
    case 'VERSION_ERR': return 'unsupported protocol version';
    case 'RATE_LIMIT': return 'rate limit or quota exceeded';
    case 'BAD_FORMAT': return 'invalid message format or content';
    case 'SERVER_ERR': return 'internal server error';
    case 'TIMEOUT': return 'operation timed out';
    case 'NOT_IMPLEMENTED': return 'requested feature not implemented';
    case 'UNAVAILABLE': return 'service temporarily unavailable';
  }
}
