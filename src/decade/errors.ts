/**
 * DECADE status codes and {@link DecadeError}, the one error type of the
 * DECADE profiles: raised by the server for an ERR (or an error answer), and
 * thrown by the client when one arrives. Each code has a fixed BEEP reply
 * code (RFC 3080 §8); the table, and why, is in `spec/decade.md` §6.
 *
 * @module
 */
import { BeepError, ErrorCodes, type ErrorCode } from '../errors.js';

/** Every DECADE error code, stable: programs switch on these. */
export const DECADE_CODES = [
  'VALIDATION_FAILED',
  'PERMISSION_DENIED',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_OPERATION',
  'TOKEN_OBJECT',
  'TOKEN_CLIENT',
  'TOKEN_BUDGET',
  'TOKEN_REPLAYED',
  'NOT_FOUND',
  'NOT_AVAILABLE',
  'QUOTA_EXCEEDED',
  'INVALID_NAME',
  'INVALID_RANGE',
  'BAD_REQUEST',
  'SERVER_ERROR',
] as const;

/** One DECADE error code. */
export type DecadeCode = (typeof DECADE_CODES)[number];

/**
 * The BEEP reply code each DECADE code travels with: 4xx transient (the same
 * request may succeed later), 5xx permanent. Every token refusal is 537 (not
 * authorised) except a token that is not a valid signed token at all (535).
 */
export const DECADE_REPLY_CODES: Readonly<Record<DecadeCode, number>> = Object.freeze({
  VALIDATION_FAILED: 554,
  PERMISSION_DENIED: 537,
  TOKEN_INVALID: 535,
  TOKEN_EXPIRED: 537,
  TOKEN_OPERATION: 537,
  TOKEN_OBJECT: 537,
  TOKEN_CLIENT: 537,
  TOKEN_BUDGET: 537,
  TOKEN_REPLAYED: 537,
  NOT_FOUND: 550,
  NOT_AVAILABLE: 421,
  QUOTA_EXCEEDED: 450,
  INVALID_NAME: 553,
  INVALID_RANGE: 553,
  BAD_REQUEST: 501,
  SERVER_ERROR: 451,
});

/** True for a string that is one of {@link DECADE_CODES}. */
export function isDecadeCode(s: unknown): s is DecadeCode {
  return typeof s === 'string' && (DECADE_CODES as readonly string[]).includes(s);
}

/** The beepstream error code a DECADE code is classed under, for code that switches on `BeepError.code`. */
function beepCode(code: DecadeCode, origin: 'local' | 'remote'): ErrorCode {
  if (origin === 'remote') return ErrorCodes.REPLY_ERROR;
  switch (code) {
    case 'PERMISSION_DENIED':
    case 'TOKEN_INVALID':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_OPERATION':
    case 'TOKEN_OBJECT':
    case 'TOKEN_CLIENT':
    case 'TOKEN_BUDGET':
    case 'TOKEN_REPLAYED':
      return ErrorCodes.AUTH;
    case 'QUOTA_EXCEEDED':
      return ErrorCodes.LIMIT;
    case 'INVALID_NAME':
    case 'INVALID_RANGE':
    case 'BAD_REQUEST':
      return ErrorCodes.INVALID_ARGUMENT;
    default:
      return ErrorCodes.INVALID_STATE;
  }
}

/** Options of a {@link DecadeError}. */
export interface DecadeErrorOptions {
  /** BEEP reply code; defaults to {@link DECADE_REPLY_CODES}[code]. */
  replyCode?: number;
  /** `remote`: sent by the peer; `local`: raised here (the default). */
  origin?: 'local' | 'remote';
  cause?: unknown;
}

/**
 * A DECADE error: `decadeCode` (stable, one of {@link DECADE_CODES}), the BEEP
 * `replyCode` it travels with, and a human message that never carries a
 * token. `code` is the beepstream class (`BEEP_ERR_REPLY` when the peer sent
 * it; `BEEP_ERR_AUTH`, `BEEP_ERR_LIMIT`, `BEEP_ERR_INVALID_ARGUMENT` or
 * `BEEP_ERR_INVALID_STATE` when raised here).
 */
export class DecadeError extends BeepError {
  /** The DECADE status code. */
  readonly decadeCode: DecadeCode;
  /** The RFC 3080 §8 reply code of the ERR. */
  declare readonly replyCode: number;

  /** An error with a DECADE code and a human message. */
  constructor(decadeCode: DecadeCode, message: string, options: DecadeErrorOptions = {}) {
    const origin = options.origin ?? 'local';
    super(beepCode(decadeCode, origin), message, { replyCode: options.replyCode ?? DECADE_REPLY_CODES[decadeCode], origin, cause: options.cause });
    this.decadeCode = decadeCode;
  }
}

/** True when `err` is a {@link DecadeError}, with `code` when given. */
export function isDecadeError(err: unknown, code?: DecadeCode): err is DecadeError {
  return err instanceof DecadeError && (code === undefined || err.decadeCode === code);
}
