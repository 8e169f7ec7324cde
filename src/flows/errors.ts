/**
 * The error codes of the flows profile (`spec/flows.md` §6) and
 * {@link FlowsError}, the one error type of `src/flows/`: raised by the FNAA
 * for an ERR reply, thrown by the FNUA client when an ERR arrives, and thrown
 * locally for a bad argument.
 *
 * Each code is a stable string programs switch on, sent with a BEEP reply
 * code (RFC 3080 §8): 4xx transient (the same request may succeed later),
 * 5xx permanent.
 *
 * @module
 */
import { BeepError, ErrorCodes, type ErrorCode } from '../errors.js';

/** Every flows error code with its BEEP reply code. Codes never change meaning; new ones may be added. */
export const FLOWS_REPLY_CODES = Object.freeze({
  /** The request is not a JSON object with a known shape (500), or a parameter is missing or invalid (501). */
  BAD_REQUEST: 501,
  /** An event of a publish batch is invalid (the reply names its `index`). */
  BAD_EVENT: 553,
  /** The `op` is not one this server implements. */
  UNKNOWN_OP: 504,
  /** The authenticated identity lacks the permission (`permission`: create, publish, subscribe or admin). */
  NOT_AUTHORIZED: 537,
  /** An event claims a source host its publisher may not speak for. */
  FORGED_SOURCE: 537,
  /** An event is routed (`to`) to a user its publisher may not route events to (S2S "authorization to route to a given user"). */
  ROUTE_NOT_AUTHORIZED: 537,
  /** No flow of that name. */
  FLOW_NOT_FOUND: 550,
  /** A flow of that name exists already. */
  FLOW_EXISTS: 550,
  /** A producer's sequence numbers skip: events were lost on the way (`expected` is the next one the server wants). */
  SEQUENCE_GAP: 554,
  /** A sequence number already stored was sent again with a different event id: modified or reused. */
  SEQUENCE_CONFLICT: 554,
  /** The server is shutting down or its store failed; try again later. */
  UNAVAILABLE: 421,
  /** The server failed; nothing of the request was stored. */
  SERVER_ERROR: 451,
});

/** One flows error code. */
export type FlowsErrorCode = keyof typeof FLOWS_REPLY_CODES;

/** True for a string that is a flows error code. */
export function isFlowsErrorCode(s: unknown): s is FlowsErrorCode {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(FLOWS_REPLY_CODES, s);
}

/** Options of a {@link FlowsError}. */
export interface FlowsErrorOptions {
  /** BEEP reply code; defaults to {@link FLOWS_REPLY_CODES}[code] (BAD_REQUEST may also be 500). */
  replyCode?: number;
  /** Machine-readable details: `permission`, `index`, `expected`, `flow`… (never a secret). */
  details?: Readonly<Record<string, string | number>>;
  /** `remote`: an ERR sent by the peer; `local`: raised here (the default). */
  origin?: 'local' | 'remote';
  /** The library-level code; default `BEEP_ERR_REPLY` for a remote error, `BEEP_ERR_INVALID_ARGUMENT` for a local one. */
  beepCode?: ErrorCode;
  cause?: unknown;
}

/**
 * A flows error: `flowsCode` (stable string, `spec/flows.md` §6), the BEEP
 * `replyCode` it travels with, machine-readable `details`, and a human
 * message. It is a {@link BeepError}: `code` is the library-wide code
 * (`BEEP_ERR_REPLY` when the server sent it).
 */
export class FlowsError extends BeepError {
  /** The flows error code. */
  readonly flowsCode: FlowsErrorCode;
  /** RFC 3080 §8 reply code of the ERR. */
  declare readonly replyCode: number;
  /** Machine-readable details. */
  readonly details: Readonly<Record<string, string | number>>;
  /** The human text, without the code prefix of `message`. */
  readonly text: string;

  /** An error with a flows code and a human message. */
  constructor(code: FlowsErrorCode, text: string, options: FlowsErrorOptions = {}) {
    const origin = options.origin ?? 'local';
    super(options.beepCode ?? (origin === 'remote' ? ErrorCodes.REPLY_ERROR : ErrorCodes.INVALID_ARGUMENT), `${code}: ${text}`, {
      replyCode: options.replyCode ?? FLOWS_REPLY_CODES[code],
      origin,
      cause: options.cause,
    });
    this.name = 'FlowsError';
    this.flowsCode = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    this.text = text;
  }

  /** The JSON body of the ERR carrying this error (`spec/flows.md` §6). */
  toJSON(): { error: { code: FlowsErrorCode; reply: number; message: string } & Record<string, string | number> } {
    return { error: { ...this.details, code: this.flowsCode, reply: this.replyCode, message: this.text } };
  }
}
